"""An OpenAI-compatible chat server (vLLM, TGI, Ollama, llama.cpp's server) behind the same interface
as the local model: how a class outgrows one machine. The server applies its own chat template;
what we send is the JSON below, and streamed answers arrive as server-sent events:

    POST {base_url}/chat/completions
    {"model": ..., "messages": [...], "n": N, "temperature": T, "top_p": p, "max_tokens": M,
     "seed": s, "stream": false | true}
    stream: lines `data: {"choices": [{"index": i, "delta": {"content": "..."}}]}` ... `data: [DONE]`

Some servers ignore `n` (Ollama, llama.cpp); missing samples are then asked for one by one.
Every request has a connect and a read timeout, so a dead server never hangs the tab.
"""
from __future__ import annotations

import json
import time
from typing import Iterator

import httpx

from playground.core.errors import Unavailable
from playground.prompting.engine import Chat, GenConfig, Generation

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 60.0


def request_json(model: str, chat: Chat) -> str:
    """What we send for a chat, as shown to a learner (the server applies its own chat template)."""
    return json.dumps({"model": model, "messages": chat}, indent=1, ensure_ascii=False)


class RemoteError(Unavailable, RuntimeError):
    """The server cannot be reached or answered with an error; the message says what to check."""


class RemoteBackend:
    kind = "remote"

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None,
                 timeout: float = READ_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = httpx.Timeout(timeout, connect=CONNECT_TIMEOUT)
        self.model = model or self._first_model()
        self.name = self.model

    def describe(self) -> str:
        return f"`{self.model}` (OpenAI-compatible server at {self.base_url})"

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _first_model(self) -> str:
        try:
            r = httpx.get(f"{self.base_url}/models", headers=self._headers(), timeout=self.timeout)
            r.raise_for_status()
            data = r.json().get("data") or []
            return data[0]["id"] if data else "default"
        except (httpx.HTTPError, ValueError, KeyError, IndexError) as e:
            raise RemoteError(f"No answer from {self.base_url}/models ({type(e).__name__}: {e}). Is the server "
                              "running, and does the URL end in /v1?") from None

    def render(self, chat: Chat) -> str:
        """What we send: the messages as JSON (the server applies its own chat template)."""
        return request_json(self.model, chat)

    def _body(self, chat: Chat, cfg: GenConfig, n: int, stream: bool) -> dict:
        body = {"model": self.model, "messages": chat, "n": n, "max_tokens": cfg.max_new_tokens,
                "temperature": max(cfg.temperature, 0.0), "top_p": cfg.top_p, "seed": cfg.seed, "stream": stream}
        if cfg.top_k:
            body["top_k"] = cfg.top_k   # vLLM, llama.cpp and Ollama accept it; OpenAI ignores unknown keys
        return body

    def _post(self, body: dict) -> dict:
        try:
            r = httpx.post(f"{self.base_url}/chat/completions", json=body, headers=self._headers(),
                           timeout=self.timeout)
            r.raise_for_status()
            return r.json()
        except httpx.HTTPStatusError as e:
            raise RemoteError(f"The server answered {e.response.status_code}: {e.response.text[:200]}") from None
        except (httpx.HTTPError, ValueError) as e:
            raise RemoteError(f"{self.base_url} failed: {type(e).__name__}: {e}") from None

    def _complete(self, chat: Chat, cfg: GenConfig) -> tuple[list[str], int, bool]:
        texts: list[str] = []
        tokens, exact = 0, True
        for attempt in range(cfg.n):
            if len(texts) >= cfg.n:
                break
            body = self._body(chat, cfg, cfg.n - len(texts), stream=False)
            body["seed"] = cfg.seed + attempt
            data = self._post(body)
            choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
            if not choices:
                raise RemoteError("The server answered without any choices.")
            got = [(c.get("message") or {}).get("content") or "" for c in choices]
            texts.extend(got)
            usage = data.get("usage") or {}
            if "completion_tokens" in usage:
                tokens += int(usage["completion_tokens"])
            else:
                exact = False
                tokens += sum(max(1, len(t) // 4) for t in got)
        return texts[:cfg.n], tokens, exact

    def generate(self, chats: list[Chat], cfg: GenConfig) -> Generation:
        t0 = time.perf_counter()
        out, total, exact = [], 0, True
        for chat in chats:
            texts, tokens, ok = self._complete(chat, cfg)
            out.append(texts)
            total += tokens
            exact &= ok
        return Generation(out, total, time.perf_counter() - t0,
                          note="" if exact else " (token counts estimated: the server sent no usage)")

    def stream(self, chat: Chat, cfg: GenConfig) -> Iterator[str | Generation]:
        """Server-sent events; yields the text of choice 0 as it grows, then the Generation."""
        texts = [""] * cfg.n
        pieces = 0
        t0 = time.perf_counter()
        try:
            with httpx.stream("POST", f"{self.base_url}/chat/completions", json=self._body(chat, cfg, cfg.n, True),
                              headers=self._headers(), timeout=self.timeout) as r:
                if r.status_code >= 400:
                    r.read()
                    raise RemoteError(f"The server answered {r.status_code}: {r.text[:200]}")
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    try:
                        event = json.loads(payload)
                    except ValueError:
                        continue
                    for c in event.get("choices") or []:
                        i = int(c.get("index", 0))
                        piece = (c.get("delta") or {}).get("content") or ""
                        if 0 <= i < cfg.n and piece:
                            texts[i] += piece
                            pieces += 1
                    yield texts[0]
        except httpx.HTTPError as e:
            raise RemoteError(f"{self.base_url} failed: {type(e).__name__}: {e}") from None
        yield Generation([texts], pieces, time.perf_counter() - t0, note=" (one streamed piece counted as a token)")
