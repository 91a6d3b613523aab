"""Content Credentials (C2PA) on synthetic clips: the local test signer from an empty config folder, a
signed MP4 that validates and decodes to the same frames, one flipped payload byte that breaks it, no
credentials on an unsigned file, user certificates, the sidecar cross-check, `dfm verify`, and no network."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dfm.app.cli.main import main
from dfm.edits import EditList, parse_edit_arg
from dfm.errors import InputError
from dfm.io.files import sha256_file
from dfm.io.video import VideoWriter, iter_frames
from dfm.pipelines.verify import verify_video
from dfm.provenance import read_credentials, resolve_identity
from dfm.provenance.identity import CA_FILE, CHAIN_FILE, KEY_FILE, TEST_FOLDER, write_test_chain
from dfm.provenance.job import EditCredentials
from dfm.provenance.manifest import describe_edit

EDITS = EditList([parse_edit_arg("happy:high:0.1-0.3"), parse_edit_arg("sad:0.7:f2-f5")])


def _write_clip(path: Path, n: int = 10, tags: dict[str, str] | None = None) -> None:
    rng = np.random.default_rng(0)
    with VideoWriter(path, width=64, height=48, rate=24, lossless=True, overwrite=True, metadata=tags) as w:
        for _ in range(n):
            w.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))


def _sign(config: Path, source: Path, out: Path, edits: EditList = EDITS, **identity) -> EditCredentials:
    creds = EditCredentials(*resolve_identity(config_dir=config, env={}, **identity), video=source,
                            input_sha256=sha256_file(source), edits=edits, seed=0, disclosure="manipulated", version="t")
    with creds.output(out) as unsigned:
        _write_clip(unsigned, tags={"dfm_manipulated": "true"})
    return creds


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """An input clip, its signed 'output' and the config folder that holds the test signer."""
    root = tmp_path_factory.mktemp("c2pa")
    source, out = root / "input.mp4", root / "out.mp4"
    _write_clip(source, n=8)
    creds = _sign(root / "config", source, out)
    return source, out, root / "config", creds


def _flip_mdat_byte(src: Path, dst: Path) -> None:
    data = bytearray(src.read_bytes())
    i = 0
    while i < len(data):
        size, kind = int.from_bytes(data[i:i + 4], "big"), bytes(data[i + 4:i + 8])
        if kind == b"mdat":
            data[i + 8 + (size - 8) // 2] ^= 0x01
            break
        i += size
    else:
        raise AssertionError("no mdat box")
    dst.write_bytes(data)


def test_local_test_signer_is_made_once_in_an_empty_config_folder(tmp_path):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    config = tmp_path / "no" / "config" / "yet"
    identity, created = resolve_identity(config_dir=config, env={})
    assert created and identity.local_test and identity.alg == "es256"
    folder = config / TEST_FOLDER
    assert stat.S_IMODE(os.stat(folder / KEY_FILE).st_mode) == 0o600
    leaf, ca = x509.load_pem_x509_certificates((folder / CHAIN_FILE).read_bytes())
    assert leaf.issuer == ca.subject and leaf.issuer != leaf.subject  # a chain, not a self-signed signer
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).critical
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    again, created_again = resolve_identity(config_dir=config, env={})
    assert not created_again and again.serial == identity.serial


def test_signed_output_validates_and_decodes_to_the_same_frames(signed, tmp_path):
    source, out, config, creds = signed
    cred = read_credentials(out)
    assert cred.state == "valid" and cred.signature_valid and cred.untrusted and not cred.failures
    edited = next(a for a in cred.actions if a["action"] == "c2pa.edited")
    assert edited["digitalSourceType"].endswith("/algorithmicMedia")
    assert "happy (high), 0.1-0.3 s" in edited["description"] and "sad (0.7), frames 2-5" in edited["description"]
    assert [c["region"][0]["type"] for c in edited["changes"]] == ["temporal", "frame"]
    assert cred.dfm["input"]["sha256"] == sha256_file(source)
    assert cred.ingredients[0]["relationship"] == "parentOf" and cred.ingredients[0]["sha256"] == sha256_file(source)
    assert cred.claim_generator.startswith("dfm t")
    assert creds.summary()["c2pa"] and creds.summary()["manifests"][str(out)] == cred.manifest
    assert creds.warnings and "not by a trusted authority" in creds.warnings[0]  # said once: it was made now
    unsigned = tmp_path / "unsigned.mp4"
    _write_clip(unsigned, tags={"dfm_manipulated": "true"})
    for a, b in zip(iter_frames(unsigned), iter_frames(out), strict=True):
        np.testing.assert_array_equal(np.asarray(a.image), np.asarray(b.image))


def test_one_flipped_byte_of_the_video_payload_fails_verification(signed, tmp_path, capsys):
    _, out, config, _ = signed
    tampered = tmp_path / "tampered.mp4"
    _flip_mdat_byte(out, tampered)
    cred = read_credentials(tampered)
    assert cred.state == "invalid" and any(f["code"] == "assertion.bmffHash.mismatch" for f in cred.failures)
    report = verify_video(tampered, config_dir=config)
    assert report.status == "invalid" and report.exit_code == 3
    assert main(["verify", str(tampered)]) == 3
    assert "INVALID: the file was changed after it was signed" in capsys.readouterr().out


def test_unsigned_video_has_no_credentials(signed, capsys):
    source, _, _, _ = signed
    assert read_credentials(source).state == "none"
    assert main(["verify", str(source)]) == 1
    text = capsys.readouterr().out
    assert "no Content Credentials" in text and "manipulated   unknown" in text


def test_verify_prints_one_screen_and_json(signed, capsys, monkeypatch):
    source, out, config, _ = signed
    monkeypatch.setenv("DFM_CONFIG", str(config))
    assert main(["verify", str(out)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == "out.mp4: Content Credentials VALID" and len(text) < 20
    joined = "\n".join(text)
    assert "0.1-0.3 s: happy (high)" in joined and "frames 2-5: sad (0.7)" in joined
    assert sha256_file(source) in joined and "this machine's DFM test certificate" in joined
    assert main(["verify", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "valid" and doc["manipulated"] is True and doc["signature"] == "valid"
    assert doc["local_test_certificate"] and doc["input_sha256"] == sha256_file(source)
    assert main(["verify", str(out.with_name("missing.mp4"))]) == 2


def test_trust_anchor_makes_the_signer_trusted(signed, tmp_path, capsys):
    _, out, config, _ = signed
    ca = config / TEST_FOLDER / CA_FILE
    assert read_credentials(out, trust_anchors=ca.read_text()).state == "trusted"
    assert main(["verify", str(out), "--trust", str(ca)]) == 0
    assert "(signer trusted)" in capsys.readouterr().out.splitlines()[0]


def test_sidecar_must_agree_with_the_credentials(signed, tmp_path):
    source, _, config, _ = signed
    out = tmp_path / "o.mp4"
    _sign(config, source, out)
    sidecar = {"manipulated": True, "input": {"sha256": sha256_file(source)}, "output": {"sha256": sha256_file(out)},
               "edits": EDITS.to_json_obj()}
    (tmp_path / "o.dfm.json").write_text(json.dumps(sidecar))
    report = verify_video(out, config_dir=config)
    assert report.status == "valid" and report.sidecar.agrees
    sidecar["edits"] = EditList([parse_edit_arg("sad:high:0.1-0.3")]).to_json_obj()
    (tmp_path / "o.dfm.json").write_text(json.dumps(sidecar))
    report = verify_video(out, config_dir=config)
    assert report.status == "invalid" and "its edits differ" in " ".join(report.sidecar.problems)


def test_user_certificate_from_options_or_environment(signed, tmp_path):
    source, _, _, _ = signed
    mine = tmp_path / "mine"
    mine.mkdir()
    write_test_chain(mine)  # stands in for a certificate the user bought
    cert, key = mine / CHAIN_FILE, mine / KEY_FILE
    identity, created = resolve_identity(cert, key, config_dir=tmp_path / "cfg", env={})
    assert not identity.local_test and not created and not (tmp_path / "cfg").exists()
    from_env, _ = resolve_identity(config_dir=tmp_path / "cfg", env={"DFM_C2PA_CERT": str(cert), "DFM_C2PA_KEY": str(key)})
    assert from_env.serial == identity.serial
    out = tmp_path / "o.mp4"
    creds = _sign(tmp_path / "cfg", source, out, cert=cert, key=key)
    assert not creds.warnings and read_credentials(out).serial == identity.serial
    with pytest.raises(InputError, match="both"):
        resolve_identity(cert, None, env={})
    other = tmp_path / "other"
    other.mkdir()
    write_test_chain(other)
    with pytest.raises(InputError, match="does not belong"):
        resolve_identity(cert, other / KEY_FILE, env={})


def test_describe_edit_names_labels_intensities_nudges_and_intervals():
    assert describe_edit(parse_edit_arg("happy:high:2-5.5")) == "happy (high), 2-5.5 s"
    assert describe_edit(parse_edit_arg("neutral:f48-f120")) == "neutral, frames 48-120"
    assert describe_edit(parse_edit_arg("au:jawOpen=+0.3:1-2")) == "jawOpen +0.3, 1-2 s"


NETWORK_PROBE = textwrap.dedent("""
    import json, os, socket, sys, threading
    from pathlib import Path
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(8)
    hits = []
    def serve():
        while True:
            conn, _ = srv.accept(); hits.append(conn.recv(100)); conn.close()
    threading.Thread(target=serve, daemon=True).start()
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        os.environ[k] = "http://127.0.0.1:%d" % srv.getsockname()[1]
    os.environ.pop("NO_PROXY", None); os.environ.pop("no_proxy", None)
    import c2pa
    from dfm.pipelines.verify import verify_video
    from dfm.provenance import read_credentials, resolve_identity
    src, out, remote, config = map(Path, sys.argv[1:5])
    identity, _ = resolve_identity(config_dir=config, env={})
    # a file whose manifest lives on the web: the probe's positive control
    from dfm.provenance.sign import offline_settings
    builder = c2pa.Builder({"claim_generator_info": [{"name": "probe", "version": "1"}], "assertions": []},
                           context=c2pa.Context.from_dict(offline_settings()))
    builder.set_intent(c2pa.C2paBuilderIntent.CREATE, c2pa.C2paDigitalSourceType.DIGITAL_CREATION)
    builder.set_remote_url("https://c2pa.example.org/manifest.c2pa")
    builder.set_no_embed()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(identity.alg, identity.chain_pem, identity.key_pem, None))
    with open(src, "rb") as s, open(remote, "w+b") as d:
        builder.sign(signer, "video/mp4", s, d)
    states = [read_credentials(out).state, verify_video(out, config_dir=config).status, read_credentials(remote).state]
    ours = len(hits)
    try:  # the library's own defaults do fetch remote manifests: the trap must see that
        c2pa.Reader("video/mp4", open(remote, "rb"), None, c2pa.Context())
    except c2pa.C2paError:
        pass
    print(json.dumps({"states": states, "connections_ours": ours, "connections_default": len(hits)}))
""")


def test_signing_and_verifying_use_no_network(signed, tmp_path):
    """Run sign/read/verify with every proxy variable pointing at a local trap (the native library's HTTP
    client honours them): DFM's settings make no connection; the library's defaults on a remote manifest do."""
    source, out, config, _ = signed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, "-c", NETWORK_PROBE, str(source), str(out), str(tmp_path / "remote.mp4"),
                          str(config)], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["states"] == ["valid", "valid", "remote"]
    assert result["connections_ours"] == 0
    assert result["connections_default"] >= 1, "the trap did not see the library's own fetch"


def test_cli_edit_refuses_half_a_signing_pair_before_any_work(signed, tmp_path, capsys):
    source, _, config, _ = signed
    cert = config / TEST_FOLDER / CHAIN_FILE
    argv = ["edit", str(source), "--edit", "happy:high:0.1-0.2", "-o", str(tmp_path / "o.mp4"), "-q",
            "--workspace", str(tmp_path / "ws"), "--sign-cert", str(cert)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dfm: error: signing needs both"), err
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "ws").exists()


def test_editing_a_signed_video_keeps_its_credentials_in_the_chain(signed, tmp_path, capsys):
    _, out, config, _ = signed
    again = tmp_path / "again.mp4"
    _sign(config, out, again, edits=EditList([parse_edit_arg("surprise:low:0.2-0.3")]))
    cred = read_credentials(again)
    assert cred.state == "valid" and cred.ingredients[0]["credentials"] and cred.ingredients[0]["title"] == "out.mp4"
    assert main(["verify", str(again)]) == 0
    assert "Content Credentials of its own" in capsys.readouterr().out


def test_jobs_starting_together_share_one_local_signer(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: resolve_identity(config_dir=tmp_path / "cfg", env={}), range(4)))
    assert len({identity.serial for identity, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert [p.name for p in (tmp_path / "cfg").iterdir()] == [TEST_FOLDER]  # no temp folders left behind


def test_a_certificate_c2pa_rejects_fails_before_the_job(tmp_path):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from dfm.provenance.job import resolve_signer

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    with pytest.raises(InputError, match="cannot sign Content Credentials"):
        resolve_signer(tmp_path / "c.pem", tmp_path / "k.pem")
    mine = tmp_path / "mine"
    mine.mkdir()
    write_test_chain(mine)
    identity, _ = resolve_signer(mine / CHAIN_FILE, mine / KEY_FILE)  # a proper chain passes the check
    assert not identity.local_test


def test_a_remux_drops_the_credentials_and_verify_says_so(signed, tmp_path, capsys):
    import av

    source, out, config, _ = signed
    sidecar = {"manipulated": True, "input": {"sha256": sha256_file(source)}, "output": {"sha256": sha256_file(out)},
               "edits": EDITS.to_json_obj()}
    remuxed = tmp_path / "remuxed.mp4"
    with av.open(str(out)) as src, av.open(str(remuxed), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    (tmp_path / "remuxed.dfm.json").write_text(json.dumps(sidecar))
    report = verify_video(remuxed, config_dir=config)
    assert report.status == "none" and report.manipulated is True and not report.sidecar.agrees
    assert report.intervals == ["0.1-0.3 s: happy (high)", "frames 2-5: sad (0.7)"]
    assert main(["verify", str(remuxed)]) == 1
    assert "unsigned" in capsys.readouterr().out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim and /proc are Linux's")
def test_release_free_memory_returns_a_fragmented_heap_to_the_os():
    # 64 kB blocks sit in glibc's heap (below its mmap threshold); freeing 15 of every 16 leaves ~180 MB of
    # free pages between live blocks that stay resident until the heap is trimmed
    from dfm.provenance.memory import release_free_memory, resident_bytes

    script = textwrap.dedent("""
        import gc, json
        from dfm.provenance.memory import release_free_memory, resident_bytes
        gc.disable()
        blocks = [bytearray(65536) for _ in range(3000)]
        for b in blocks: b[::4096] = b"x" * 16  # touch every page
        keep = blocks[::16]; del blocks
        before = resident_bytes()
        freed = release_free_memory()
        print(json.dumps({"before": before, "after": resident_bytes(), "freed": freed}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    assert r["freed"] is not None and r["freed"] > 120e6 and r["after"] < r["before"] - 120e6
    assert resident_bytes() > 0 and release_free_memory() is not None


def test_the_heap_is_released_after_the_video_is_written_and_before_it_is_signed(tmp_path, monkeypatch):
    import dfm.provenance.sign as sign

    source, out = tmp_path / "input.mp4", tmp_path / "out.mp4"
    _write_clip(source, n=4)
    seen = []

    def release():  # what the signer will get: the finished unsigned file, no output yet
        unsigned = list(tmp_path.glob("*.tmp.unsigned.mp4"))
        seen.append((len(unsigned), unsigned[0].stat().st_size if unsigned else 0, out.exists()))
        return 0

    monkeypatch.setattr(sign, "release_free_memory", release)
    _sign(tmp_path / "config", source, out)
    assert len(seen) == 1 and seen[0][0] == 1 and seen[0][1] > 1000 and not seen[0][2]
    assert read_credentials(out).state == "valid"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS read from /proc")
def test_signing_a_large_file_holds_about_one_copy_of_it_in_memory(tmp_path):
    # a valid MP4 made large by a second top-level mdat box (64 MB of random bytes, covered by the hash):
    # the library keeps its intermediate copy in a temp file (BACKING_STORE_MB), so the signer's peak stays
    # near one file's size (two before: ~2.1x measured on this file)
    source, big = tmp_path / "input.mp4", tmp_path / "big.mp4"
    _write_clip(source, n=4)
    payload = np.random.default_rng(1).integers(0, 256, 64 << 20, dtype=np.uint8).tobytes()
    big.write_bytes(source.read_bytes() + (8 + len(payload)).to_bytes(4, "big") + b"mdat" + payload)
    script = textwrap.dedent(f"""
        import json
        from pathlib import Path
        from dfm.provenance import ingredient, resolve_identity, sign_video
        def hwm():
            return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
        identity, _ = resolve_identity(config_dir=Path({str(tmp_path / 'config')!r}), env={{}})
        before = hwm()
        sign_video({str(big)!r}, {str(tmp_path / 'signed.mp4')!r}, {{"claim_generator_info": [{{"name": "dfm", "version": "t"}}],
                   "assertions": []}}, identity, ingredient=ingredient("big.mp4", "0" * 64))
        print(json.dumps({{"grew": hwm() - before}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    grew = json.loads(out.stdout)["grew"]
    assert grew < 1.4 * big.stat().st_size, f"signing {big.stat().st_size >> 20} MB raised the peak by {grew >> 20} MB"
    cred = read_credentials(tmp_path / "signed.mp4")
    assert cred.state == "valid" and cred.signature_valid and not cred.failures
