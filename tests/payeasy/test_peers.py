"""payeasy.peers: who may talk to the line — settings (errors name the setting), certificate subjects,
source addresses, sending centres; real TLS handshakes in memory with certificates made for the test."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from payeasy import peers
from payeasy.peers import PeerPolicy, PeerRefused
from tests.payeasy import tls_helpers
from tests.payeasy.tls_helpers import CENTRE_SUBJECT, SANDBOX_SUBJECT, UNMAPPED_SUBJECT, Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return tls_helpers.make_pki(tmp_path_factory.mktemp("pki"))


def tls_settings(pki: Pki, **overrides: object) -> override_settings:
    values: dict[str, object] = {
        "COMMSERVER_TLS_CERT": pki.path("server"),
        "COMMSERVER_TLS_KEY": pki.path("server", "key"),
        "COMMSERVER_TLS_CLIENT_CA": pki.ca,
        "COMMSERVER_PEERS": f"{CENTRE_SUBJECT}:MPNC000001",
        "COMMSERVER_ALLOWED_SOURCES": [],
        "DEBUG": False,
    }
    values.update(overrides)
    return override_settings(**values)


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> dict:  # type: ignore[type-arg]
    """A TLS handshake in memory, then one byte each way (TLS 1.3 refuses a client certificate only
    after the client thinks it is done); the server side's getpeercert(). SSLError when refused."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, side in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    c.write(b"x")
    s_in.write(c_out.read())
    assert s.read(1) == b"x"
    s.write(b"y")
    c_in.write(s_out.read())
    assert c.read(1) == b"y"
    return s.getpeercert()  # type: ignore[return-value]


# --- COMMSERVER_PEERS -----------------------------------------------------------------------------------


def test_peers_format_maps_subjects_to_centres() -> None:
    parsed = peers.parse_peers(
        "CN=mpn-centre-1,O=MPN,C=JP:MPNC000001, MPNC000002 ; cn=mpn-dr, o=MPN, c=JP:MPNC000001;"
    )
    assert parsed == {
        "CN=mpn-centre-1,O=MPN,C=JP": frozenset({"MPNC000001", "MPNC000002"}),
        "CN=mpn-dr,O=MPN,C=JP": frozenset({"MPNC000001"}),
    }


def test_peers_subject_with_escaped_comma_semicolon_and_colon() -> None:
    parsed = peers.parse_peers(r"CN=centre\, east\; 1,O=MPN: Japan,C=JP:MPNC000003")
    ((subject, centres),) = parsed.items()
    assert centres == {"MPNC000003"}
    assert peers.parse_subject(subject) == (
        (("2.5.4.3", "centre, east; 1"),),
        (("2.5.4.10", "MPN: Japan"),),
        (("2.5.4.6", "JP"),),
    )


def test_peers_accept_a_mapping_from_python_settings() -> None:
    assert peers.parse_peers({"CN=a": ["MPNC000001"], "CN=b": "MPNC000002"}) == {
        "CN=a": frozenset({"MPNC000001"}),
        "CN=b": frozenset({"MPNC000002"}),
    }


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("CN=mpn-centre-1", "entry 1 ('CN=mpn-centre-1') is not SUBJECT:CENTRE"),
        ("CN=a:MPNC000001;:MPNC000002", "entry 2"),
        ("CN=a:MPNC000001,TOO-LONG-CODE", "'TOO-LONG-CODE' is not a sending-centre code"),
        ("CN=a:MPNC-01", "'MPNC-01' is not a sending-centre code"),
        ("CN=a: , ", "subject CN=a has no sending-centre code"),
        ("CN=a:,,", "subject CN=a has no sending-centre code"),
        ("XX=a:MPNC000001", "unknown attribute type 'XX'"),
        ("CN:MPNC000001", "'CN' is not TYPE=value"),
        ("CN=:MPNC000001", "'CN=' has no value"),
        (r"CN=a\q:MPNC000001", "a backslash must escape"),
        ("CN=#0403616263:MPNC000001", "hex-encoded"),
        ("CN=a,C=JP:MPNC000001;CN=a, C=JP:MPNC000002", "subject CN=a,C=JP is listed twice"),
    ],
)
def test_peers_errors_name_the_setting_and_the_problem(value: str, says: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        peers.parse_peers(value)
    assert str(caught.value).startswith("COMMSERVER_PEERS: ")
    assert says in str(caught.value)


# --- COMMSERVER_ALLOWED_SOURCES -------------------------------------------------------------------------


def test_sources_are_addresses_and_networks() -> None:
    assert peers.parse_sources("10.1.2.3, 192.0.2.0/24,2001:db8::/32") == (
        ipaddress.ip_network("10.1.2.3/32"),
        ipaddress.ip_network("192.0.2.0/24"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    assert peers.parse_sources(["10.0.0.0/8", ""]) == (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize("value", ["10.0.0.5/24", "not-an-address", "10.0.0.0/33"])
def test_source_errors_name_the_setting(value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^COMMSERVER_ALLOWED_SOURCES: "):
        peers.parse_sources(value)


def test_source_restriction() -> None:
    policy = PeerPolicy(tls=None, sources=peers.parse_sources("127.0.0.2,10.0.0.0/8,2001:db8::/32"))
    for host in ("127.0.0.2", "10.9.8.7", "::ffff:10.1.1.1", "2001:db8::1", "2001:db8::1%eth0"):
        assert policy.centres_for(host=host, peercert=None) is None
    for host in ("127.0.0.1", "192.0.2.1", "::1", "?", ""):
        with pytest.raises(PeerRefused, match="is not in COMMSERVER_ALLOWED_SOURCES"):
            policy.centres_for(host=host, peercert=None)
    assert PeerPolicy(tls=None).source_allowed("192.0.2.1")  # no restriction


# --- the policy on a connection -------------------------------------------------------------------------


def cert(*rdns: tuple[tuple[str, str], ...]) -> dict:  # type: ignore[type-arg]
    """A getpeercert() dict: RDNs in certificate order, OpenSSL's long names."""
    return {"subject": rdns}


CENTRE_CERT = cert(
    (("countryName", "JP"),), (("organizationName", "MPN Test"),), (("commonName", "mpn-centre-1"),)
)


def test_plain_tcp_without_a_mapping_is_unrestricted_and_with_one_allows_only_its_centres() -> None:
    assert PeerPolicy(tls=None).centres_for(host="127.0.0.1", peercert=None) is None
    policy = PeerPolicy(tls=None, centres=peers.parse_peers("CN=a:MPNC000001;CN=b:MPNC000002,SANDBOXBNK"))
    assert policy.centres_for(host="127.0.0.1", peercert=None) == {"MPNC000001", "MPNC000002", "SANDBOXBNK"}
    assert policy.describe(None) == "plain TCP"


def test_tls_maps_the_whole_subject(pki: Pki) -> None:
    with tls_settings(pki, COMMSERVER_PEERS=f"{CENTRE_SUBJECT}:MPNC000001,MPNSIM0001"):
        policy = peers.policy_from_settings()
    assert policy.centres_for(host="127.0.0.1", peercert=CENTRE_CERT) == {"MPNC000001", "MPNSIM0001"}
    assert policy.describe(CENTRE_CERT) == CENTRE_SUBJECT
    # the same CN with another organisation is another subject
    other = cert(
        (("countryName", "JP"),), (("organizationName", "Other"),), (("commonName", "mpn-centre-1"),)
    )
    with pytest.raises(PeerRefused) as caught:
        policy.centres_for(host="127.0.0.1", peercert=other)
    assert (
        str(caught.value)
        == "certificate subject CN=mpn-centre-1,O=Other,C=JP is not mapped in COMMSERVER_PEERS"
    )
    with pytest.raises(PeerRefused, match="no client certificate"):
        policy.centres_for(host="127.0.0.1", peercert=None)
    with pytest.raises(PeerRefused, match="no client certificate"):
        policy.centres_for(host="127.0.0.1", peercert={})
    assert policy.describe(None) == "no certificate"


def test_tls_with_an_empty_mapping_refuses_everyone(pki: Pki) -> None:
    policy = PeerPolicy(
        tls=peers.server_context(cert=pki.path("server"), key=pki.path("server", "key"), client_ca=pki.ca)
    )
    with pytest.raises(PeerRefused, match="not mapped"):
        policy.centres_for(host="127.0.0.1", peercert=CENTRE_CERT)


def test_multi_valued_rdn_and_escaped_values_match_in_any_order() -> None:
    policy = PeerPolicy(tls=None, centres={r"CN=a\, b+OU=ops,O=MPN": frozenset({"MPNC000001"})})
    identity = peers.identity_of(
        cert((("organizationName", "MPN"),), (("organizationalUnitName", "ops"), ("commonName", "a, b")))
    )
    assert identity is not None and identity in policy._by_identity
    assert peers.subject_text(identity) == r"OU=ops+CN=a\, b,O=MPN"  # one order for the logs


def test_a_bad_subject_in_a_policy_built_in_python_fails_at_once() -> None:
    with pytest.raises(ValueError, match="unknown attribute type"):
        PeerPolicy(tls=None, centres={"NOPE=x": frozenset({"MPNC000001"})})


# --- policy_from_settings -------------------------------------------------------------------------------


def test_development_without_tls_settings_is_plain_tcp() -> None:
    with override_settings(
        DEBUG=True,
        COMMSERVER_TLS_CERT="",
        COMMSERVER_TLS_KEY="",
        COMMSERVER_TLS_CLIENT_CA="",
        COMMSERVER_PEERS="",
    ):
        policy = peers.policy_from_settings()
    assert policy.tls is None and policy.sources == () and not policy.centres


def test_production_without_tls_names_every_missing_setting() -> None:
    with override_settings(
        DEBUG=False,
        COMMSERVER_TLS_CERT="",
        COMMSERVER_TLS_KEY="",
        COMMSERVER_TLS_CLIENT_CA="",
        COMMSERVER_PEERS="",
    ):
        with pytest.raises(ImproperlyConfigured) as caught:
            peers.policy_from_settings()
        assert peers.policy_from_settings(insecure_plaintext=True).tls is None
    text = str(caught.value)
    assert "production needs mutual TLS on the line" in text
    assert "COMMSERVER_TLS_CERT, COMMSERVER_TLS_KEY, COMMSERVER_TLS_CLIENT_CA not set" in text
    assert "--insecure-plaintext" in text


@pytest.mark.parametrize("debug", [True, False])
def test_some_tls_settings_but_not_all_names_the_missing_ones(pki: Pki, debug: bool) -> None:
    with tls_settings(pki, COMMSERVER_TLS_KEY="", DEBUG=debug), pytest.raises(ImproperlyConfigured) as caught:
        peers.policy_from_settings()
    assert "(COMMSERVER_TLS_CERT, COMMSERVER_TLS_CLIENT_CA) but not all: COMMSERVER_TLS_KEY not set" in str(
        caught.value
    )


def test_tls_without_peers_refuses_to_start(pki: Pki) -> None:
    for debug in (True, False):
        with (
            tls_settings(pki, COMMSERVER_PEERS="", DEBUG=debug),
            pytest.raises(ImproperlyConfigured, match=r"^COMMSERVER_PEERS is not set: with mutual TLS"),
        ):
            peers.policy_from_settings()


def test_paths_must_be_absolute_existing_files(pki: Pki, tmp_path: Path) -> None:
    with (
        tls_settings(pki, COMMSERVER_TLS_CERT="certs/server.pem"),
        pytest.raises(
            ImproperlyConfigured,
            match=r"^COMMSERVER_TLS_CERT must be an absolute path, not 'certs/server.pem'",
        ),
    ):
        peers.policy_from_settings()
    with (
        tls_settings(pki, COMMSERVER_TLS_CLIENT_CA=str(tmp_path / "nope.pem")),
        pytest.raises(ImproperlyConfigured, match=r"^COMMSERVER_TLS_CLIENT_CA: .*nope.pem does not exist"),
    ):
        peers.policy_from_settings()


def test_files_that_do_not_load_name_their_setting(pki: Pki, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with (
        tls_settings(pki, COMMSERVER_TLS_CLIENT_CA=str(junk)),
        pytest.raises(ImproperlyConfigured, match=r"^COMMSERVER_TLS_CLIENT_CA: cannot load .*junk.pem"),
    ):
        peers.policy_from_settings()
    # the key of another certificate
    with (
        tls_settings(pki, COMMSERVER_TLS_KEY=pki.path("client", "key")),
        pytest.raises(ImproperlyConfigured, match=r"^COMMSERVER_TLS_CERT/COMMSERVER_TLS_KEY: cannot load"),
    ):
        peers.policy_from_settings()
    # an encrypted key fails instead of prompting for a password
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(pki.path("server", "key")).read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with (
        tls_settings(pki, COMMSERVER_TLS_KEY=str(encrypted)),
        pytest.raises(ImproperlyConfigured, match=r"^COMMSERVER_TLS_CERT/COMMSERVER_TLS_KEY: cannot load"),
    ):
        peers.policy_from_settings()


def test_bad_peers_or_sources_stop_even_development() -> None:
    with (
        override_settings(DEBUG=True, COMMSERVER_PEERS="CN=a"),
        pytest.raises(ImproperlyConfigured, match=r"^COMMSERVER_PEERS: "),
    ):
        peers.policy_from_settings()
    with (
        override_settings(DEBUG=True, COMMSERVER_ALLOWED_SOURCES=["10.0.0.1/8"]),
        pytest.raises(ImproperlyConfigured, match=r"^COMMSERVER_ALLOWED_SOURCES: "),
    ):
        peers.policy_from_settings()


def test_production_tls_context(pki: Pki) -> None:
    with tls_settings(pki, COMMSERVER_ALLOWED_SOURCES=["192.0.2.0/24"]):
        policy = peers.policy_from_settings()
        assert peers.policy_from_settings(insecure_plaintext=True).tls is None  # the flag wins
    assert policy.tls is not None
    assert policy.tls.verify_mode == ssl.CERT_REQUIRED
    assert policy.tls.minimum_version == ssl.TLSVersion.TLSv1_2
    assert policy.tls.get_ca_certs() and all(  # only the line's CA, never the system's store
        dict(x[0] for x in c["subject"])["commonName"] == "MPN Test Line CA"
        for c in policy.tls.get_ca_certs()
    )
    assert policy.sources == (ipaddress.ip_network("192.0.2.0/24"),)


# --- real handshakes --------------------------------------------------------------------------------------


def test_a_mapped_client_certificate_handshakes_and_maps_to_its_centres(pki: Pki) -> None:
    with tls_settings(pki, COMMSERVER_PEERS=tls_helpers.default_peers()):
        policy = peers.policy_from_settings()
    assert policy.tls is not None
    peercert = handshake(policy.tls, pki.client_context("client"))
    assert policy.describe(peercert) == CENTRE_SUBJECT
    assert policy.centres_for(host="127.0.0.1", peercert=peercert) == {"MPNC000001", "MPNSIM0001"}
    sandbox = handshake(policy.tls, pki.client_context("sandbox"))
    assert policy.centres_for(host="127.0.0.1", peercert=sandbox) == {"SANDBOXBNK"}
    assert policy.describe(sandbox) == SANDBOX_SUBJECT
    unmapped = handshake(policy.tls, pki.client_context("unmapped"))  # a valid certificate…
    with pytest.raises(PeerRefused, match=f"certificate subject {UNMAPPED_SUBJECT} is not mapped"):
        policy.centres_for(host="127.0.0.1", peercert=unmapped)  # …of nobody the line knows


@pytest.mark.parametrize("client", [None, "rogue", "expired"])
def test_no_foreign_or_expired_client_certificate_gets_through_the_handshake(
    pki: Pki, client: str | None
) -> None:
    with tls_settings(pki):
        policy = peers.policy_from_settings()
    assert policy.tls is not None
    with pytest.raises(ssl.SSLError):
        handshake(policy.tls, pki.client_context(client))


def test_the_client_checks_the_server(pki: Pki) -> None:
    server = peers.server_context(cert=pki.path("server"), key=pki.path("server", "key"), client_ca=pki.ca)
    stranger = peers.client_context(ca=pki.other_ca, cert=pki.path("client"), key=pki.path("client", "key"))
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server, stranger)
    with pytest.raises(ValueError, match="without a client certificate"):
        peers.client_context(ca=pki.ca, key=pki.path("client", "key"))


# --- the simulator's client side --------------------------------------------------------------------------


def test_simulator_tls_from_settings_and_arguments(pki: Pki) -> None:
    from payeasy import simulator

    with override_settings(MPN_SIMULATOR_TLS_CA="", MPN_SIMULATOR_TLS_CERT="", MPN_SIMULATOR_TLS_KEY=""):
        assert simulator.tls_context() is None
        assert simulator.tls_context(pki.ca, pki.path("client"), pki.path("client", "key")) is not None
        with pytest.raises(ValueError, match="without a CA"):
            simulator.tls_context(None, pki.path("client"))
    with override_settings(**{k: v for k, v in pki.client_env().items()}):
        context = simulator.tls_context()
        assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert simulator.tls_context("") is None  # --tls-ca "" turns it off
    with (
        override_settings(MPN_SIMULATOR_TLS_CA="ca.pem"),
        pytest.raises(ImproperlyConfigured, match="MPN_SIMULATOR_TLS_CA must be an absolute path"),
    ):
        simulator.tls_context()
