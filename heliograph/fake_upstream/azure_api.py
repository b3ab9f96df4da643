"""Azure OpenAI: OpenAI bodies behind deployment URLs.

  POST /openai/deployments/{deployment}/chat/completions?api-version=…
  POST /openai/deployments/{deployment}/embeddings?api-version=…
  POST /openai/v1/chat/completions | /openai/v1/embeddings | /openai/v1/responses
  POST /openai/responses?api-version=…

Auth is an ``api-key`` header (or an Entra ID bearer token); a deployment URL without
``api-version`` is a 404, as on Azure. Replies name the deployment's model with its
version and carry Azure's content-filter annotations; a stream opens with Azure's
prompt-filter chunk (empty id and model, no choices).
"""

from __future__ import annotations

from aiohttp import web

from . import openai_api

# What a deployment of each base model reports as its model.
MODEL_VERSIONS = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-11-20",
                  "text-embedding-3-small": "text-embedding-3-small"}
BAD_KEY = "sk-bad"
ACCESS_DENIED = ("Access denied due to invalid subscription key or wrong API endpoint. Make "
                 "sure to provide a valid key for an active subscription and use a correct "
                 "regional API endpoint for your resource.")
FILTERS_OK = {name: {"filtered": False, "severity": "safe"}
              for name in ("hate", "self_harm", "sexual", "violence")}


def register(app: web.Application) -> None:
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", chat)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", embeddings)
    app.router.add_post("/openai/v1/chat/completions", chat)
    app.router.add_post("/openai/v1/embeddings", embeddings)
    app.router.add_post("/openai/v1/responses", responses)
    app.router.add_post("/openai/responses", responses)


def _azure_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _check_auth(request: web.Request, t0: float) -> web.Response | None:
    key = request.headers.get("api-key", "").strip()
    bearer = request.headers.get("Authorization", "")
    if not key and not bearer.lower().startswith("bearer "):
        return _azure_error(401, "401", ACCESS_DENIED)
    if key == BAD_KEY or bearer.strip() == "Bearer " + BAD_KEY:
        return _azure_error(401, "401", ACCESS_DENIED)
    # The dated (non-v1) URLs need an api-version; without one Azure finds no resource.
    if "/openai/v1/" not in request.path and not request.query.get("api-version"):
        return _azure_error(404, "404", "Resource not found")
    return None


def _deployment(request: web.Request) -> str | None:
    return request.match_info.get("deployment")


def _model(deployment: str | None) -> str | None:
    return MODEL_VERSIONS.get(deployment, deployment) if deployment else None


def _decorate(completion: dict, chunks: list | None) -> None:
    prompt_filter = [{"prompt_index": 0, "content_filter_results": FILTERS_OK}]
    if chunks is None:
        completion["prompt_filter_results"] = prompt_filter
        for choice in completion["choices"]:
            choice["content_filter_results"] = FILTERS_OK
        return
    for chunk in chunks:
        for choice in chunk["choices"]:
            choice["content_filter_results"] = FILTERS_OK if choice["delta"] else {}
    chunks.insert(0, {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                      "prompt_filter_results": prompt_filter})


async def chat(request: web.Request) -> web.StreamResponse:
    deployment = _deployment(request)
    if deployment is None:
        # /openai/v1: the deployment is named in the body.
        try:
            deployment = (await request.json()).get("model")
        except (ValueError, AttributeError):
            deployment = None
    return await openai_api.serve_chat(request, _check_auth, _model(deployment), _decorate)


async def embeddings(request: web.Request) -> web.StreamResponse:
    return await openai_api.serve_embeddings(request, _check_auth, _deployment(request))


async def responses(request: web.Request) -> web.StreamResponse:
    try:
        deployment = (await request.json()).get("model")
    except (ValueError, AttributeError):
        deployment = None
    return await openai_api.serve_responses(request, _check_auth, _model(deployment))
