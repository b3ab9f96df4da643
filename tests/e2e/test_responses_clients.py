"""The default Responses API paths of pydantic-ai (OpenAIResponsesModel) and LangChain
(ChatOpenAI(use_responses_api=True)) against Claude and Gemini models through the real
gateway, the provider faked (heliograph/fake_upstream): plain answers, streams, tools and
structured output."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel
from servers import ADMIN_KEY

MODELS = ["claude-3-5-haiku-latest", "gemini-2.0-flash"]


@pytest.fixture(params=MODELS, ids=["claude", "gemini"])
def model(request):
    return request.param


class Weather(BaseModel):
    city: str
    degrees: int


def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


# -- pydantic-ai --------------------------------------------------------------------------
def _agent(gateway, model: str, **kwargs):
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    provider = OpenAIProvider(base_url=gateway.url + "/v1", api_key=ADMIN_KEY)
    return Agent(OpenAIResponsesModel(model, provider=provider), **kwargs)


def test_pydantic_ai_runs_an_agent(gateway, model):
    result = _agent(gateway, model).run_sync("hello agent")
    assert result.output == "Echo: hello agent"
    # A method in pydantic-ai 1.x, a property (still callable, with a warning) in 2.x.
    usage = result.usage if hasattr(result.usage, "input_tokens") else result.usage()
    assert usage.input_tokens > 0 and usage.output_tokens > 0


def test_pydantic_ai_streams(gateway, model):
    async def run() -> tuple[list[str], str]:
        async with _agent(gateway, model).run_stream("stream agent") as result:
            pieces = [text async for text in result.stream_text(delta=True)]
            return pieces, await result.get_output()

    pieces, output = asyncio.run(run())
    assert "".join(pieces) == output == "Echo: stream agent"


def test_pydantic_ai_calls_tools(gateway, model):
    agent = _agent(gateway, model, tools=[get_weather])
    result = agent.run_sync("weather in Paris?")
    assert result.output == "Echo: sunny"
    kinds = [part.part_kind for message in result.all_messages() for part in message.parts]
    assert "tool-call" in kinds and "tool-return" in kinds


def test_pydantic_ai_structured_output(gateway, model):
    result = _agent(gateway, model, output_type=Weather).run_sync("weather as data")
    assert isinstance(result.output, Weather) and result.output.city


# -- LangChain ----------------------------------------------------------------------------
def _chat(gateway, model: str):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=model, base_url=gateway.url + "/v1", api_key=ADMIN_KEY,
                      use_responses_api=True, max_retries=0)


def test_langchain_invokes_and_streams(gateway, model):
    llm = _chat(gateway, model)
    message = llm.invoke("hello chain")
    assert message.text == "Echo: hello chain"
    assert message.usage_metadata["input_tokens"] > 0
    streamed = "".join(chunk.text for chunk in llm.stream("stream chain"))
    assert streamed == "Echo: stream chain"


def test_langchain_binds_tools(gateway, model):
    from langchain_core.messages import HumanMessage, ToolMessage

    llm = _chat(gateway, model).bind_tools([get_weather])
    question = HumanMessage("weather in Paris?")
    asked = llm.invoke([question])
    (call,) = asked.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "fake city"}
    answer = llm.invoke([question, asked, ToolMessage("sunny", tool_call_id=call["id"])])
    assert answer.text == "Echo: sunny"


def test_langchain_structured_output(gateway, model):
    result = _chat(gateway, model).with_structured_output(Weather).invoke("weather as data")
    assert isinstance(result, Weather) and result.city
