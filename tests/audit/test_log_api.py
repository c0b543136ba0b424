"""The audit log as a transparency log, through the API: receipts, checkpoints, proofs, the
public view, witnesses (two, with a quorum of two) and a deliberately forked log."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from app.audit import notes, offline, tree
from app.audit.chain import canonical
from app.audit.log_router import log_config
from app.audit.writer import Entry
from app.cli import main
from app.core.config import BUNDLED_POLICY, Settings
from app.core.secrets import load_ed25519, new_ed25519_pem, write_private
from app.orders.models import Instrument
from app.records.demo.generator import DEMO_PATRON, OTHER_PATRON
from app.runtime import Runtime
from app.witness import ForkDetected, witness_once
from tests.audit.forge import rebuild_tree, rewrite_event
from tests.conftest import TEST_PATRONS, auth
from tests.factories import disclosure_body

Token = Callable[..., str]
CASE = "2026-CR-777001"


def witness(tmp_path: Path, name: str) -> notes.Signer:
    path = tmp_path / f"{name.replace('/', '_')}.key"
    write_private(path, new_ed25519_pem())
    return notes.witness_signer(name, load_ed25519(path, "witness key"))


@pytest.fixture
def witnesses(tmp_path: Path) -> list[notes.Signer]:
    return [witness(tmp_path, "peer.example/w1"), witness(tmp_path, "state-assoc.example/w2")]


def policy_file(tmp_path: Path, *, public: bool, vkeys: list[str], required: int) -> Path:
    base = BUNDLED_POLICY.read_text("utf-8")
    base = base[: base.index("[log]")]
    path = tmp_path / "policy.toml"
    path.write_text(
        base
        + f"[log]\npublic = {str(public).lower()}\nwitnesses = {json.dumps(vkeys)}\n"
        + f"required_witnesses = {required}\n",
        "utf-8",
    )
    return path


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], tmp_path: Path, witnesses: list[notes.Signer]
) -> Settings:
    vkeys = [w.verifier.vkey for w in witnesses]
    return make_settings(
        policy=policy_file(tmp_path, public=True, vkeys=vkeys, required=2),
        log_origin="library.example/bulwark",
    )


body = disclosure_body


def order(token: Token, **overrides: Any) -> str:
    overrides.setdefault("patrons", [DEMO_PATRON])
    overrides.setdefault("categories", ["circulation"])
    overrides.setdefault("case", CASE)
    return token(**overrides)


async def decisions(client: httpx.AsyncClient, keys: dict[str, str], token: Token) -> list[Any]:
    """A permit, a deny and a dry run; their answers."""
    req = auth(keys["requester"])
    permit = await client.post("/v1/disclosures", json=body(order(token)), headers=req)
    deny = await client.post(
        "/v1/disclosures", json=body(order(token), patron_id=OTHER_PATRON), headers=req
    )
    dry = await client.post("/v1/decisions", json=body(order(token)), headers=req)
    assert (permit.status_code, deny.status_code, dry.status_code) == (200, 403, 200)
    return [permit, deny, dry]


def receipt_of(response: httpx.Response) -> tuple[int, str]:
    data = response.json()
    if response.status_code == 200:
        return data["audit"]["leaf_index"], data["audit"]["leaf_hash"]
    return data["audit_leaf_index"], data["audit_leaf_hash"]


async def sign(client: httpx.AsyncClient, keys: dict[str, str]) -> str:
    response = await client.post("/v1/audit/log/checkpoints", headers=auth(keys["auditor"]))
    assert response.status_code == 200, response.text
    return response.text


async def publish(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    runtime: Runtime,
    witnesses: list[notes.Signer],
    tmp_path: Path,
) -> str:
    """Sign a checkpoint and have every witness cosign it (each with its state file)."""
    note = await sign(client, keys)
    log = log_config(runtime).verifier
    for i, w in enumerate(witnesses):
        await witness_once(client, log, w, tmp_path / f"w{i}.json")
    return note


def codes(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"].startswith("application/problem+json")
    return [r["code"] for r in response.json()["reasons"]]


# --------------------------------------------------------------------------- receipts


async def test_every_recorded_decision_carries_its_receipt(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    answers = await decisions(client, keys, order_token)
    events = (
        await client.get("/v1/audit/events", params={"limit": 1000}, headers=auth(keys["auditor"]))
    ).json()["events"]
    by_seq = {e["seq"]: e for e in events}
    for answer in answers:
        index, leaf = receipt_of(answer)
        seq = answer.json()["audit"]["seq"] if answer.status_code == 200 else None
        seq = seq or answer.json()["audit_seq"]
        assert index == seq - 1
        expected = tree.leaf_hash(canonical(by_seq[seq]["body"])).hex()
        assert leaf == expected


async def test_receipt_proof_waits_for_the_witnesses_then_verifies_offline(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    runtime: Runtime,
    witnesses: list[notes.Signer],
    tmp_path: Path,
) -> None:
    permit, *_ = await decisions(client, keys, order_token)
    seq = permit.json()["audit"]["seq"]
    index, leaf = receipt_of(permit)
    req = auth(keys["requester"])
    # Nothing published yet: no checkpoint at all, then one with no cosignature.
    assert codes(await client.get(f"/v1/receipts/{seq}", headers=req)) == ["log.no_checkpoint"]
    await sign(client, keys)
    assert codes(await client.get(f"/v1/receipts/{seq}", headers=req)) == ["log.no_checkpoint"]
    log = log_config(runtime).verifier
    for w in witnesses:
        assert (await witness_once(client, log, w, tmp_path / f"{w.name[:4]}.json")).action == (
            "cosigned"
        )
    proof = await client.get(f"/v1/receipts/{seq}", headers=req)
    assert proof.status_code == 200, proof.text
    document = proof.json()
    assert (document["leaf_index"], document["leaf_hash"]) == (index, leaf)
    verified = offline.check_inclusion(
        document,
        log,
        witnesses=[w.verifier for w in witnesses],
        quorum=2,
        leaf_hash=bytes.fromhex(leaf),
    )
    assert verified.cosigners == tuple(sorted(w.name for w in witnesses))

    # The standalone command: only the proof, the log's key and the witnesses' keys.
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(document))
    args = ["audit", "verify-proof", str(path), "--log-key", log.vkey, "--leaf-hash", leaf]
    for w in witnesses:
        args += ["--witness", w.verifier.vkey]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "proof OK" in result.output
    other = "00" * 32
    result = CliRunner().invoke(main, [*args[:-6], "--leaf-hash", other, *args[-4:]])
    assert result.exit_code == 1


# --------------------------------------------------------------------------- bad input


async def test_bad_proof_requests_are_4xx_problems(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    await decisions(client, keys, order_token)
    await sign(client, keys)
    aud = auth(keys["auditor"])
    beyond = await client.get("/v1/audit/proofs/inclusion", params={"seq": 10_000}, headers=aud)
    assert (beyond.status_code, codes(beyond)) == (422, ["log.index_beyond_tree"])
    never = await client.get(
        "/v1/audit/proofs/inclusion", params={"seq": 1, "size": 2}, headers=aud
    )
    assert (never.status_code, codes(never)) == (404, ["log.size_not_checkpointed"])
    order_ = await client.get(
        "/v1/audit/proofs/consistency", params={"old": 5, "new": 2}, headers=aud
    )
    assert (order_.status_code, codes(order_)) == (422, ["log.index_beyond_tree"])
    never2 = await client.get(
        "/v1/audit/proofs/consistency", params={"old": 1, "new": 2}, headers=aud
    )
    assert codes(never2) == ["log.size_not_checkpointed"]
    public = await client.get("/v1/log/proof/inclusion", params={"index": 999_999})
    assert (public.status_code, codes(public)) == (422, ["log.index_beyond_tree"])
    tile = await client.get("/v1/log/tile/0/x99/000")
    assert tile.status_code in (404, 422)
    garbage = await client.get("/v1/log/tile/0/abc")
    assert (garbage.status_code, codes(garbage)) == (422, ["request.invalid"])
    # The requester role may fetch receipts, not auditors' proofs.
    forbidden = await client.get(
        "/v1/audit/proofs/inclusion", params={"seq": 1}, headers=auth(keys["requester"])
    )
    assert codes(forbidden) == ["caller.forbidden"]


async def test_malformed_forged_and_unknown_cosignatures_are_refused(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    runtime: Runtime,
    witnesses: list[notes.Signer],
    tmp_path: Path,
) -> None:
    await decisions(client, keys, order_token)
    note = await sign(client, keys)
    url = "/v1/log/witness/cosignatures"
    checkpoint_text = note[: note.rindex("\n\n") + 1]

    malformed = await client.post(url, content="not a note")
    assert (malformed.status_code, codes(malformed)) == (422, ["log.checkpoint_malformed"])

    # A checkpoint signed by another key under the log's name: forged.
    impostor = notes.log_signer("library.example/bulwark", load_ed25519(_key(tmp_path), "k"))
    forged_note = checkpoint_text + "\n" + impostor.sign_note(checkpoint_text)
    forged = await client.post(url, content=forged_note + witnesses[0].cosign(checkpoint_text))
    assert (forged.status_code, codes(forged)) == (422, ["log.checkpoint_forged"])

    # The log's checkpoint with its text altered (another root): the signature fails.
    lines = checkpoint_text.split("\n")
    altered_text = "\n".join([lines[0], lines[1], "A" * 43 + "=", ""])
    altered = await client.post(url, content=altered_text + note[len(checkpoint_text) :])
    assert codes(altered) == ["log.checkpoint_forged"]

    # A known witness's cosignature that does not verify.
    good = witnesses[0].cosign(checkpoint_text)
    name, data = good[2:].rstrip("\n").split(" ")
    raw = bytearray(base64.b64decode(data))
    raw[-1] ^= 1
    bad_line = f"\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
    bad = await client.post(url, content=note + bad_line)
    assert (bad.status_code, codes(bad)) == (403, ["log.cosignature_invalid"])

    # A cosignature from a witness the policy does not name.
    stranger = witness(tmp_path, "stranger.example/w9")
    unknown = await client.post(url, content=note + stranger.cosign(checkpoint_text))
    assert (unknown.status_code, codes(unknown)) == (403, ["log.witness_unknown"])

    # None of these counted: nothing is published.
    assert codes(await client.get("/v1/log/checkpoint")) == ["log.no_checkpoint"]
    ok = await client.post(url, content=note + good)
    assert ok.json() == {
        "size": ok.json()["size"],
        "witnesses": [witnesses[0].name],
        "published": False,
    }


def _key(tmp_path: Path) -> Path:
    path = tmp_path / "impostor.key"
    write_private(path, new_ed25519_pem())
    return path


# --------------------------------------------------------------------------- witnesses, forks


async def test_two_witnesses_publish_and_follow_the_log(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    runtime: Runtime,
    witnesses: list[notes.Signer],
    tmp_path: Path,
) -> None:
    log = log_config(runtime).verifier
    states = [tmp_path / "w1.json", tmp_path / "w2.json"]
    for round_ in range(3):
        await decisions(client, keys, order_token)
        note = await sign(client, keys)
        size = int(note.split("\n")[1])
        first = await witness_once(client, log, witnesses[0], states[0])
        assert (first.action, first.size) == ("cosigned", size)
        published = await client.get("/v1/log/checkpoint")
        if round_ == 0:
            assert codes(published) == ["log.no_checkpoint"]  # one of two is not enough
        else:
            assert int(published.text.split("\n")[1]) < size  # still the previous one
        await witness_once(client, log, witnesses[1], states[1])
        published = await client.get("/v1/log/checkpoint")
        assert published.status_code == 200
        assert published.headers["content-type"].startswith("text/plain")
        checkpoint, cosigners = offline.check_checkpoint(
            published.text, log, [w.verifier for w in witnesses], 2
        )
        assert checkpoint.size == size
        assert len(cosigners) == 2
        again = await witness_once(client, log, witnesses[0], states[0])
        assert again.action == "unchanged"
    # Any two published checkpoints are provably consistent, for anyone.
    old = json.loads(states[0].read_text())["size"]
    proof = await client.get("/v1/log/proof/consistency", params={"old": 0, "new": old})
    assert offline.check_consistency(proof.json(), log, witnesses=[], quorum=0).size == old


async def _rewrite_history(runtime: Runtime, *, add: int) -> None:
    """A database administrator rewrites event 2, recomputes the chain and the tree, and the
    log goes on (``add`` more events)."""
    await rewrite_event(runtime.state, 2, lambda b: b.replace("{", '{"a":"forged",', 1))
    await rebuild_tree(runtime.state)
    for i in range(add):
        await runtime.audit.append(Entry(kind="evaluation", effect="deny", body={"v": 1, "i": i}))


async def _hide_checkpoints(runtime: Runtime) -> None:
    async with runtime.state.begin() as conn:
        await conn.execute(text("DELETE FROM audit_cosignatures"))
        await conn.execute(text("DELETE FROM audit_checkpoints"))


@pytest.mark.parametrize("add", [0, 3])
async def test_a_forked_log_is_refused_and_reported_by_the_witness(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    runtime: Runtime,
    witnesses: list[notes.Signer],
    tmp_path: Path,
    add: int,
) -> None:
    log = log_config(runtime).verifier
    state = tmp_path / "w1.json"
    await decisions(client, keys, order_token)
    await sign(client, keys)
    cosigned = await witness_once(client, log, witnesses[0], state)
    await _rewrite_history(runtime, add=add)
    # The log itself refuses to sign over a tree that contradicts its last checkpoint...
    refused = await client.post("/v1/audit/log/checkpoints", headers=auth(keys["auditor"]))
    assert (refused.status_code, codes(refused)) == (503, ["log.inconsistent"])
    await _hide_checkpoints(runtime)  # ...so the insider removes the checkpoints too
    forked = await sign(client, keys)  # a validly signed checkpoint of another history
    assert int(forked.split("\n")[1]) == cosigned.size + add
    with pytest.raises(ForkDetected):
        await witness_once(client, log, witnesses[0], state)
    evidence = state.with_suffix(".json.fork").read_text("utf-8")
    assert forked in evidence
    async with runtime.state.connect() as conn:
        count = (await conn.execute(text("SELECT COUNT(*) FROM audit_cosignatures"))).scalar_one()
    assert count == 0  # never cosigned
    # The state still holds what it cosigned: asking again refuses again.
    with pytest.raises(ForkDetected):
        await witness_once(client, log, witnesses[0], state)


# --------------------------------------------------------------------------- tampering


async def test_tampering_is_caught_by_the_documented_verifier(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    runtime: Runtime,
    witnesses: list[notes.Signer],
    tmp_path: Path,
) -> None:
    log = log_config(runtime).verifier
    permit, *_ = await decisions(client, keys, order_token)
    seq = permit.json()["audit"]["seq"]
    for i in range(40):  # enough events that the proof uses a stored node (16 events each)
        await runtime.audit.append(Entry(kind="evaluation", effect="deny", body={"v": 1, "i": i}))
    await publish(client, keys, runtime, witnesses, tmp_path)
    document = (await client.get(f"/v1/receipts/{seq}", headers=auth(keys["requester"]))).json()
    wkeys = [w.verifier for w in witnesses]
    offline.check_inclusion(document, log, witnesses=wkeys, quorum=2)

    # A checkpoint edited after signing.
    edited = dict(document)
    edited["checkpoint"] = re.sub(
        r"\n(\d+)\n", lambda m: f"\n{int(m[1]) + 1}\n", document["checkpoint"], count=1
    )
    with pytest.raises(offline.ProofInvalid, match="checkpoint rejected"):
        offline.check_inclusion(edited, log, witnesses=wkeys, quorum=2)
    # A cosignature edited (or stripped): the quorum is not met.
    lines = document["checkpoint"].split("\n")
    stripped = dict(document, checkpoint="\n".join(lines[:-2]) + "\n")
    with pytest.raises(offline.ProofInvalid, match="required"):
        offline.check_inclusion(stripped, log, witnesses=wkeys, quorum=2)
    last = lines[-2]
    # Inside the signature (the last characters before the padding carry padding bits).
    flipped = last[:-10] + ("A" if last[-10] != "A" else "B") + last[-9:]
    bad_cosig = dict(document, checkpoint="\n".join([*lines[:-2], flipped, ""]))
    with pytest.raises(offline.ProofInvalid):
        offline.check_inclusion(bad_cosig, log, witnesses=wkeys, quorum=2)

    # A tree node changed in the database: the proof served no longer reaches the root.
    assert seq <= 16  # the receipt's event is under node (4, 0); its proof holds node (4, 1)
    async with runtime.state.begin() as conn:
        await conn.execute(
            text("UPDATE audit_tree SET hash = :h WHERE level = 4 AND idx = 1"), {"h": "cd" * 32}
        )
    served = (await client.get(f"/v1/receipts/{seq}", headers=auth(keys["requester"]))).json()
    with pytest.raises(offline.ProofInvalid, match="root hash"):
        offline.check_inclusion(served, log, witnesses=wkeys, quorum=2)
    verdict = await client.get("/v1/audit/verify", headers=auth(keys["auditor"]))
    assert (verdict.json()["ok"], verdict.json()["first_bad_seq"]) == (False, 17)
    await rebuild_tree(runtime.state)

    # An event changed in the database: its leaf no longer hashes to the receipt's leaf hash
    # (the proof's leaf is the event as stored), and `bulwark audit verify` names it.
    async with runtime.state.begin() as conn:
        await conn.execute(
            text("UPDATE audit_events SET body = REPLACE(body, :a, :b) WHERE seq = :s"),
            {"a": '"v":', "b": '"x":0,"v":', "s": seq},
        )
    served = (await client.get(f"/v1/receipts/{seq}", headers=auth(keys["requester"]))).json()
    with pytest.raises(offline.ProofInvalid, match="another leaf"):
        offline.check_inclusion(
            served, log, witnesses=wkeys, quorum=2, leaf_hash=bytes.fromhex(document["leaf_hash"])
        )
    with pytest.raises(offline.ProofInvalid, match="root hash"):  # and it no longer fits
        offline.check_inclusion(served, log, witnesses=wkeys, quorum=2)
    verdict = await client.get("/v1/audit/verify", headers=auth(keys["auditor"]))
    assert (verdict.json()["ok"], verdict.json()["first_bad_seq"]) == (False, seq)


# --------------------------------------------------------------------------- the public view


async def test_the_public_view_holds_no_event_content(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    runtime: Runtime,
    witnesses: list[notes.Signer],
    tmp_path: Path,
) -> None:
    for _ in range(3):
        await decisions(client, keys, order_token)
    # Cover more than one full tile of level 0 would take 256 events; a partial one is enough.
    note = await publish(client, keys, runtime, witnesses, tmp_path)
    size = int(note.split("\n")[1])
    served: list[bytes] = []
    for path, params in [
        ("/v1/log/checkpoint", {}),
        ("/v1/log/key", {}),
        ("/v1/log/witness/checkpoint", {}),
        ("/v1/log/proof/consistency", {"old": 0, "new": size}),
        ("/v1/log/witness/consistency", {"old": 0, "new": size}),
        *[("/v1/log/proof/inclusion", {"index": i}) for i in range(size)],
        (f"/v1/log/tile/0/000.p/{size}", {}),
    ]:
        response = await client.get(path, params=params)
        assert response.status_code == 200, (path, response.text)
        served.append(response.content)
    tile = served[-1]
    assert len(tile) == 32 * size
    async with runtime.state.connect() as conn:
        bodies = [
            r.body for r in await conn.execute(text("SELECT body FROM audit_events ORDER BY seq"))
        ]
    assert tile[:32] == tree.leaf_hash(bodies[0])
    everything = b"\n".join(served).decode("latin-1")
    patrons = [f"P{n:06d}" for n in range(1, TEST_PATRONS + 1)] + [DEMO_PATRON, OTHER_PATRON]
    pseudonyms = re.findall(r'"patron":"([^"]+)"', "".join(bodies))
    assert pseudonyms
    for needle in [*patrons, *pseudonyms, CASE, *(i.value for i in Instrument), "court"]:
        assert needle not in everything, needle


async def test_the_log_is_private_unless_the_policy_publishes_it(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    from app.main import create_app
    from app.runtime import build_runtime
    from tests.conftest import migrate

    settings = make_settings(policy=policy_file(tmp_path, public=False, vkeys=[], required=0))
    await migrate(settings)
    runtime = await build_runtime(settings)
    try:
        app = create_app(runtime=runtime)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                from app.admin.clients import add_client
                from app.callers.models import Role

                _, auditor = await add_client(runtime.state, "a", Role.AUDITOR, audit=runtime.audit)
                _, requester = await add_client(
                    runtime.state, "r", Role.REQUESTER, audit=runtime.audit
                )
                hidden = await c.get("/v1/log/checkpoint")
                assert (hidden.status_code, codes(hidden)) == (401, ["caller.unauthenticated"])
                assert codes(await c.get("/v1/log/key", headers=auth(requester))) == [
                    "caller.forbidden"
                ]
                signed = await c.post("/v1/audit/log/checkpoints", headers=auth(auditor))
                assert signed.status_code == 200
                # No witnesses required: the signed checkpoint is the published one.
                seen = await c.get("/v1/log/checkpoint", headers=auth(auditor))
                assert seen.text == signed.text
    finally:
        await runtime.close()


# --------------------------------------------------------------------------- the patron


async def test_a_notified_patron_is_given_the_proof_of_the_disclosure(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    runtime: Runtime,
    witnesses: list[notes.Signer],
    tmp_path: Path,
) -> None:
    log = log_config(runtime).verifier
    req = auth(keys["requester"])
    permit = await client.post("/v1/disclosures", json=body(order(order_token)), headers=req)
    sealed = await client.post(
        "/v1/disclosures",
        json=body(order(order_token, nondisclosure_until="2099-01-01", case="2026-CR-9")),
        headers=req,
    )
    assert (permit.status_code, sealed.status_code) == (200, 200)
    await publish(client, keys, runtime, witnesses, tmp_path)
    notifier = auth(keys["notifier"])
    [notice] = (await client.get("/v1/notices/due", headers=notifier)).json()["notices"]
    assert notice["disclosure_id"] == permit.json()["disclosure_id"]
    proof = await client.get(f"/v1/notices/{notice['id']}/proof", headers=notifier)
    assert proof.status_code == 200, proof.text
    leaf = permit.json()["audit"]["leaf_hash"]
    offline.check_inclusion(
        proof.json(),
        log,
        witnesses=[w.verifier for w in witnesses],
        quorum=2,
        leaf_hash=bytes.fromhex(leaf),
    )
    # The sealed disclosure's notice is not due: neither is its proof.
    async with runtime.state.connect() as conn:
        sealed_id = (
            await conn.execute(
                text("SELECT id FROM notices WHERE disclosure_id = :d"),
                {"d": sealed.json()["disclosure_id"]},
            )
        ).scalar_one()
    hidden = await client.get(f"/v1/notices/{sealed_id}/proof", headers=notifier)
    assert (hidden.status_code, codes(hidden)) == (404, ["request.not_found"])
    assert codes(await client.get(f"/v1/notices/{notice['id']}/proof", headers=req)) == [
        "caller.forbidden"
    ]


async def test_each_process_signs_checkpoints_as_the_tree_grows(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    import asyncio

    from app.audit import tlog
    from app.main import create_app
    from app.runtime import build_runtime
    from tests.conftest import migrate

    settings = make_settings(
        policy=policy_file(tmp_path, public=False, vkeys=[], required=0),
        log_checkpoint_seconds=1,
    )
    await migrate(settings)
    runtime = await build_runtime(settings)
    try:
        app = create_app(runtime=runtime)
        async with app.router.lifespan_context(app):
            await runtime.audit.append(Entry(kind="evaluation", effect="deny", body={"v": 1}))
            for _ in range(50):
                await asyncio.sleep(0.1)
                try:
                    signed = await tlog.latest_signed(runtime.state)
                    break
                except tlog.LogError:
                    continue
            else:
                raise AssertionError("no checkpoint was signed")
            assert signed.size == 1
    finally:
        await runtime.close()
