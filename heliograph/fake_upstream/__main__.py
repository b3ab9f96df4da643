"""python -m heliograph.fake_upstream [--host H] [--port P] [--chunk-delay-ms MS]"""

import argparse

from . import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m heliograph.fake_upstream",
                                     description="Fake LLM provider (OpenAI, Anthropic, "
                                                 "Gemini and Azure wire formats).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0,
                        help="pause between stream chunks (default 0)")
    args = parser.parse_args(argv)
    run(args.host, args.port, chunk_delay_ms=args.chunk_delay_ms)


if __name__ == "__main__":
    main()
