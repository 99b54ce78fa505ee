"""`python -m s2s_tts`: the TTS server of docs/tts-protocol.md.

    python -m s2s_tts --engine vibevoice|espeak-double --model-dir DIR --host 127.0.0.1 --port 8000
                      [--device cpu|cuda] [--dtype float32|bfloat16] [--max-streams N] [--max-text-chars N]

The port is bound first (a port in use fails at once, naming it), the engine loads, and only then does the
server listen: a listening port means ready. SIGTERM or SIGINT closes every stream and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import sys
from pathlib import Path

from s2s_tts.loader import ENGINES, EngineLoadError, EngineSpec, load_engine
from s2s_tts.server import DEFAULT_MAX_TEXT_CHARS, ServerOptions, TtsServer

log = logging.getLogger("s2s_tts")

# Exit codes: the engine could not load, the port is taken.
EXIT_ENGINE = 1
EXIT_PORT_TAKEN = 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m s2s_tts", description="The TTS server (docs/tts-protocol.md).")
    parser.add_argument("--engine", choices=ENGINES, default="vibevoice")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default=None, help="default: bfloat16 on cuda")
    parser.add_argument("--max-streams", type=_positive, default=8)
    parser.add_argument("--max-text-chars", type=_positive, default=DEFAULT_MAX_TEXT_CHARS)
    args = parser.parse_args(argv)
    if args.dtype is None:
        args.dtype = "bfloat16" if args.device == "cuda" else "float32"
    return args


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def bind(host: str, port: int) -> socket.socket:
    """Bound, not listening: connections are refused until the engine is ready, and nobody else can listen here."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # A restarted server must not wait out the TIME_WAIT of its predecessor's connections; Linux still refuses
    # the port while another socket listens on it.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def port_taken_line(host: str, port: int, error: OSError) -> str:
    return (
        f"s2s_tts: port {port} on {host} is already in use ({error.strerror}); stop what listens there or pick --port"
    )


async def serve_until_signal(server: TtsServer, sock: socket.socket, host: str) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start(sock)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        print(port_taken_line(host, sock.getsockname()[1], error), file=sys.stderr)
        return EXIT_PORT_TAKEN
    log.info("listening on %s:%d (engine %s)", host, server.port, server.engine.name)
    await stop.wait()
    log.info("stopping: closing every stream")
    await server.close()
    await asyncio.to_thread(server.engine.close)
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="s2s_tts: %(message)s")
    logging.getLogger("s2s_tts.websockets").setLevel(logging.WARNING)
    try:
        sock = bind(args.host, args.port)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            print(f"s2s_tts: cannot bind {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
            return EXIT_PORT_TAKEN
        print(port_taken_line(args.host, args.port, error), file=sys.stderr)
        return EXIT_PORT_TAKEN
    spec = EngineSpec(args.engine, args.model_dir, args.device, args.dtype, args.max_streams)
    log.info("loading engine %s (device %s, %s, max %d streams)", spec.name, spec.device, spec.dtype, spec.max_streams)
    try:
        engine = load_engine(spec)
    except EngineLoadError as error:
        print(f"s2s_tts: {error}", file=sys.stderr)
        sock.close()
        return EXIT_ENGINE
    except Exception as error:
        log.exception("the engine failed to load")
        print(f"s2s_tts: engine {spec.name} failed to load: {type(error).__name__}: {error}", file=sys.stderr)
        sock.close()
        return EXIT_ENGINE
    server = TtsServer(engine, ServerOptions(max_text_chars=args.max_text_chars))
    try:
        return asyncio.run(serve_until_signal(server, sock, args.host))
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
