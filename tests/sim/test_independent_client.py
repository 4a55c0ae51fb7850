"""A client written only from the protocol reference (plain websockets + cryptography, no ssmd.kalshi):
it signs in, subscribes and gets what it asked for."""

from __future__ import annotations

import base64
import json
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from websockets.asyncio.client import connect

from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import test_config as make_config


def kalshi_headers(key_id: str, pem: bytes, path: str) -> dict[str, str]:
    key = serialization.load_pem_private_key(pem, password=None)
    ts = str(int(time.time() * 1000))
    signature = key.sign(  # type: ignore[union-attr, call-arg]
        (ts + "GET" + path).encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),  # type: ignore[arg-type]
    )
    return {"KALSHI-ACCESS-KEY": key_id, "KALSHI-ACCESS-TIMESTAMP": ts,
            "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode()}


async def test_reference_client_signs_in_subscribes_and_receives(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with Simulator(make_config(rate=500), key_path=tmp_path / "key.pem") as sim:
        assert sim.client_key is not None
        key_id, pem = sim.client_key.key_id, (tmp_path / "key.pem").read_bytes()
        assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
        assert (tmp_path / "key.pem").stat().st_mode & 0o777 == 0o600
        wanted = list(sim.model.markets)[:3]
        url = sim.ws_url
        async with connect(url, additional_headers=kalshi_headers(key_id, pem, "/trade-api/ws/v2")) as ws:
            await ws.send(json.dumps({"id": 1, "cmd": "subscribe",
                                      "params": {"channels": ["orderbook_delta", "trade"], "market_tickers": wanted}}))
            sids: dict[str, int] = {}
            last_seq: dict[int, int] = {}
            books: dict[str, dict[str, dict[str, str]]] = {}
            kinds: set[str] = set()
            while len(kinds) < 3 or len(last_seq) < 2:
                frame = json.loads(await ws.recv())
                kind = frame["type"]
                kinds.add(kind)
                if kind == "subscribed":
                    assert frame["id"] == 1
                    sids[frame["msg"]["channel"]] = frame["msg"]["sid"]
                    continue
                assert frame["sid"] in sids.values()
                sid, seq = frame["sid"], frame["seq"]
                assert seq == last_seq.get(sid, 0) + 1, "seq must be contiguous per sid"
                last_seq[sid] = seq
                msg = frame["msg"]
                assert msg["market_ticker"] in wanted
                if kind == "orderbook_snapshot":
                    books[msg["market_ticker"]] = {s: dict(msg.get(f"{s}_dollars_fp", [])) for s in ("yes", "no")}
                elif kind == "orderbook_delta":
                    side = books[msg["market_ticker"]][msg["side"]]
                    total = float(side.get(msg["price_dollars"], "0")) + float(msg["delta_fp"])
                    assert total > -1e-9
                elif kind == "trade":
                    assert abs(float(msg["yes_price_dollars"]) + float(msg["no_price_dollars"]) - 1) < 1e-9
            assert set(sids) == {"orderbook_delta", "trade"} and set(books) == set(wanted)
