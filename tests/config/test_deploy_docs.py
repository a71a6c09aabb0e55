"""The production start commands and their documentation stay true to the code.

- Every environment variable the product reads (config/, billing/, payeasy/, reconciliation/: the
  ``env_*`` helpers, gunicorn.conf.py's ``_int``, ``os.environ``/``os.getenv`` with a literal name or a
  module constant) is in the table of docs/operations.md and in config/deploy/payeasy.env.example, so a
  new variable cannot land undocumented; and neither lists a variable nobody reads.
- Every line of config/deploy/Procfile.production and every systemd unit in config/deploy/systemd/ runs a
  command that exists (a management command, the Celery app and its queues, gunicorn's config file and
  applications, an installed program), and the Procfile and the units run the same commands.
- The load balancer example sends exactly the live event streams to the ASGI service.

Files only: no database, no broker (the commands themselves are started by the production topology check
in docs/operations.md, "Bringing it up").
"""

from __future__ import annotations

import ast
import configparser
import importlib
import re
import shlex
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import get_commands
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("config", "billing", "payeasy", "reconciliation")
OPERATIONS = ROOT / "docs" / "operations.md"
ENV_EXAMPLE = ROOT / "config" / "deploy" / "payeasy.env.example"
PROCFILE = ROOT / "config" / "deploy" / "Procfile.production"
UNITS = ROOT / "config" / "deploy" / "systemd"
NGINX = ROOT / "config" / "deploy" / "nginx" / "payeasy.conf"
VENV_BIN = "/srv/payeasy/.venv/bin/"

# helpers that take a variable's name as their first argument
ENV_READERS = {"env_str", "env_int", "env_bool", "env_list", "_int", "getenv"}
# read by the start commands (the Procfile, the units), not by the product's code
READ_BY_START_COMMANDS = {"EVENTS_BIND"}
# Procfile process → systemd unit running the same command
SERVICES = {
    "web": "payeasy-web.service",
    "events": "payeasy-events.service",
    "commserver": "payeasy-commserver.service",
    "payments": "payeasy-worker-payments.service",
    "background": "payeasy-worker-background.service",
    "beat": "payeasy-beat.service",
}


# --------------------------------------------------------------------------------------------------------
# What the code reads, what the documents list
# --------------------------------------------------------------------------------------------------------


def _variable_name(node: ast.AST, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _is_environ(node: ast.AST, os_environ_names: set[str]) -> bool:
    """``os.environ``, or a name bound by ``from os import environ`` (not a WSGI ``environ`` argument)."""
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    ) or (isinstance(node, ast.Name) and node.id in os_environ_names)


def env_reads_in(source: str, filename: str = "<source>") -> set[str]:
    """The environment variables a module reads by name: ``env_str("X")`` and the other helpers,
    ``os.environ.get/setdefault/pop("X")``, ``os.environ["X"]``, ``os.getenv("X")``, with a literal or a
    module-level string constant (``MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"``)."""
    tree = ast.parse(source, filename)
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    os_environ_names = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "os"
        for alias in node.names
        if alias.name == "environ"
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        argument: ast.AST | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            called = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            on_environ = (
                isinstance(func, ast.Attribute)
                and func.attr in {"get", "setdefault", "pop"}
                and _is_environ(func.value, os_environ_names)
            )
            if called in ENV_READERS or on_environ:
                argument = node.args[0]
        elif isinstance(node, ast.Subscript) and _is_environ(node.value, os_environ_names):
            argument = node.slice
        name = _variable_name(argument, constants) if argument is not None else None
        if name and re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            names.add(name)
    return names


def product_env_reads() -> dict[str, list[str]]:
    """Variable → the product modules that read it."""
    found: dict[str, list[str]] = {}
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for name in env_reads_in(path.read_text(encoding="utf-8"), str(path)):
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def operations_table_names() -> set[str]:
    """The variables of the table under "## Environment variables" in docs/operations.md: every
    backquoted NAME in a row's first cell."""
    text = OPERATIONS.read_text(encoding="utf-8")
    match = re.search(r"^## Environment variables\n(.*?)(?=^## |^# |\Z)", text, re.M | re.S)
    assert match, 'docs/operations.md has no "## Environment variables" section'
    names: set[str] = set()
    for line in match.group(1).splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            first = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first))
    return names


def env_example_names() -> set[str]:
    """NAME of every ``NAME=`` and ``#NAME=`` line of payeasy.env.example."""
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.M))


def test_the_scanner_finds_every_way_of_reading() -> None:
    source = (
        "import os\nfrom os import environ\nNAME = 'FROM_CONSTANT'\n"
        "a = env_str('A_STR')\nb = env_int('B_INT', 1)\nc = env_bool('C_BOOL')\nd = env_list('D_LIST')\n"
        "e = _int('E_GUNICORN', 2)\nf = os.environ.get('F_GET')\ng = os.environ['G_ITEM']\n"
        "h = os.getenv('H_GETENV')\nos.environ.setdefault('I_DEFAULT', 'x')\nj = environ.get(NAME)\n"
        "k = os.environ.get(name_from_elsewhere)\nl = settings.get('NOT_ENV')\n"
    )
    assert env_reads_in(source) == {
        "A_STR",
        "B_INT",
        "C_BOOL",
        "D_LIST",
        "E_GUNICORN",
        "F_GET",
        "G_ITEM",
        "H_GETENV",
        "I_DEFAULT",
        "FROM_CONSTANT",
    }
    # a WSGI application's environ is the request's, not the process's
    assert (
        env_reads_in("def app(environ, start_response):\n    return environ.get('HTTP_AUTHORIZATION')\n")
        == set()
    )


def test_the_product_reads_the_variables_it_is_known_to_read() -> None:
    """The scan sees the reads of every kind (a scan that found nothing would pass everything below)."""
    reads = product_env_reads()
    for name in ("DJANGO_SECRET_KEY", "WEB_WORKERS", "PROMETHEUS_MULTIPROC_DIR", "PAYEASY_RUN_DIR"):
        assert name in reads, name


def test_every_variable_read_is_documented_in_the_table_and_the_env_file() -> None:
    reads = product_env_reads()
    table, example = operations_table_names(), env_example_names()
    missing_table = {name: files for name, files in reads.items() if name not in table}
    missing_example = {name: files for name, files in reads.items() if name not in example}
    assert not missing_table, (
        f"add to the table of docs/operations.md (Environment variables): {missing_table}"
    )
    assert not missing_example, f"add to config/deploy/payeasy.env.example: {missing_example}"


def test_nothing_documented_that_nobody_reads() -> None:
    reads = set(product_env_reads()) | READ_BY_START_COMMANDS
    assert not operations_table_names() - reads, (
        "the table of docs/operations.md lists variables nobody reads"
    )
    assert not env_example_names() - reads, "payeasy.env.example lists variables nobody reads"
    start_commands = PROCFILE.read_text(encoding="utf-8") + "".join(
        p.read_text(encoding="utf-8") for p in UNITS.glob("*.service")
    )
    for name in READ_BY_START_COMMANDS:
        assert "${" + name in start_commands, f"{name} is read by no start command"


def test_systemd_and_honcho_read_the_env_file_alike() -> None:
    """systemd's EnvironmentFile= and honcho's -e see the same values (honcho drops unquoted spaces)."""
    from honcho.environ import parse

    systemd: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            systemd[name.strip()] = value
    assert systemd
    assert dict(parse(ENV_EXAMPLE.read_text(encoding="utf-8"))) == systemd


# --------------------------------------------------------------------------------------------------------
# The start commands
# --------------------------------------------------------------------------------------------------------


def procfile() -> dict[str, str]:
    lines = [line for line in PROCFILE.read_text(encoding="utf-8").splitlines() if line and line[0] != "#"]
    return dict(line.split(": ", 1) for line in lines)


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    text = (UNITS / name).read_text(encoding="utf-8").replace("\\\n", " ")
    # repeated keys (ExecStartPre=, EnvironmentFile=) are kept, newline-separated
    parser._read(iter(_dedupe(text).splitlines(keepends=True)), name)  # type: ignore[attr-defined]
    return parser


def _dedupe(text: str) -> str:
    """A unit's repeated keys as one key with one value a line (configparser's continuation lines)."""
    out: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        if "=" in stripped and not stripped.startswith("#") and not stripped.startswith("["):
            key, value = stripped.split("=", 1)
            if (section, key) in seen:
                out.insert(seen[(section, key)] + 1, "    " + value)
                for k, index in seen.items():
                    if index > seen[(section, key)]:
                        seen[k] = index + 1
                continue
            seen[(section, key)] = len(out)
        out.append(line)
    return "\n".join(out) + "\n"


def values(parser: configparser.RawConfigParser, section: str, key: str) -> list[str]:
    raw = parser.get(section, key, fallback="")
    return [v.strip() for v in raw.splitlines() if v.strip()]


def unit_files() -> list[str]:
    return sorted(p.name for p in UNITS.glob("*.service"))


def commands_of(line: str) -> list[list[str]]:
    """The commands of a Procfile line (``;``-separated), each as its words."""
    return [shlex.split(part) for part in line.split(";") if part.strip()]


def bare(words: list[str]) -> list[str]:
    """The command without the shell's ``exec`` and ``nice -n N`` in front (a unit says Nice=)."""
    while words and words[0] in {"exec", "nice"}:
        words = words[3:] if words[0] == "nice" else words[1:]
    return words


def normalised(words: list[str]) -> list[str]:
    """A command as both files write it: bare, no venv path, systemd's ``%%`` unescaped, a shell default
    ``${X:-…}`` as ``${X}``."""
    words = [w.removeprefix(VENV_BIN).replace("%%", "%") for w in bare(words)]
    return [re.sub(r"\$\{([A-Z_]+):-[^}]*\}", r"${\1}", w) for w in words]


def check_command(words: list[str]) -> None:
    """The program exists and what it is told to run exists."""
    words = bare(words)
    program, args = words[0], words[1:]
    if program.startswith("/") and not program.startswith(VENV_BIN):
        assert Path(program).exists(), program
        return
    program = program.removeprefix(VENV_BIN)
    if program in {"rm", "mkdir", "export"}:
        return
    assert (Path(sys.prefix) / "bin" / program).exists(), f"{program} is not installed in the environment"
    if program == "python":
        assert args[0] == "manage.py", words
        assert args[1] in get_commands(), f"manage.py {args[1]} is not a command"
    elif program == "celery":
        assert args[:2] == ["-A", "config"], words
        assert importlib.import_module("config.celery").app.main == "payeasy_portal"
        assert args[2] in {"worker", "beat"}, words
        if args[2] == "worker":
            queues = [a.split("=", 1)[1] for a in args if a.startswith("--queues=")]
            assert len(queues) == 1, f"a worker names its queues: {words}"
            assert set(queues[0].split(",")) <= set(settings.TASK_QUEUES), words
    elif program == "gunicorn":
        if "-c" in args:
            assert (ROOT / args[args.index("-c") + 1]).is_file()
        apps = [a for a in args if re.fullmatch(r"[\w.]+:\w+", a)]
        for app in apps:
            module, attribute = app.split(":")
            assert hasattr(importlib.import_module(module), attribute), app
        if "-k" in args:
            module, _, cls = args[args.index("-k") + 1].rpartition(".")
            assert hasattr(importlib.import_module(module), cls)
    else:
        pytest.fail(f"unknown program {program}: {words}")


def test_the_procfile_runs_the_topology_with_commands_that_exist() -> None:
    processes = procfile()
    assert set(processes) == set(SERVICES)
    for line in processes.values():
        for words in commands_of(line):
            check_command(words)


def test_the_workers_consume_every_queue_and_payments_alone() -> None:
    consumed: dict[str, set[str]] = {}
    for name in ("payments", "background"):
        words = commands_of(procfile()[name])[-1]
        consumed[name] = set(next(a for a in words if a.startswith("--queues=")).split("=", 1)[1].split(","))
    assert consumed["payments"] == {settings.PAYMENTS_QUEUE}
    assert consumed["background"] == set(settings.BACKGROUND_QUEUES)
    assert consumed["payments"] | consumed["background"] == set(settings.TASK_QUEUES)


def test_the_units_run_the_same_commands_as_the_procfile() -> None:
    processes = procfile()
    for process, name in SERVICES.items():
        exec_start = values(unit(name), "Service", "ExecStart")
        assert len(exec_start) == 1, name
        words = shlex.split(exec_start[0])
        check_command(words)
        assert normalised(words) == normalised(commands_of(processes[process])[-1]), name


def test_every_unit_is_supervised_and_reads_the_env_file() -> None:
    names = unit_files()
    assert set(SERVICES.values()) | {"payeasy-migrate.service"} == set(names)
    for name in names:
        parsed = unit(name)
        assert "/etc/payeasy/payeasy.env" in values(parsed, "Service", "EnvironmentFile"), name
        assert values(parsed, "Install", "WantedBy") == ["payeasy.target"], name
        assert values(parsed, "Unit", "PartOf") == ["payeasy.target"], name
        assert parsed.get("Service", "User") == "payeasy", name
        if name != "payeasy-migrate.service":
            assert parsed.get("Service", "Restart") == "always", name
            assert "payeasy-migrate.service" in parsed.get("Unit", "After"), name
        for command in values(parsed, "Service", "ExecStartPre"):
            check_command(shlex.split(command))
    assert (UNITS / "payeasy.target").is_file()


def test_migrate_is_a_oneshot_as_the_owner() -> None:
    parsed = unit("payeasy-migrate.service")
    assert parsed.get("Service", "Type") == "oneshot"
    assert "/etc/payeasy/owner.env" in values(parsed, "Service", "EnvironmentFile")
    commands = [shlex.split(c) for c in values(parsed, "Service", "ExecStart")]
    for words in commands:
        check_command(words)
    assert commands[0][1:3] == ["manage.py", "migrate"]
    for name in SERVICES.values():  # the owner's credentials stay out of the long-running processes
        assert "/etc/payeasy/owner.env" not in values(unit(name), "Service", "EnvironmentFile"), name


def test_the_web_unit_empties_its_own_metrics_directory_before_each_start() -> None:
    parsed = unit("payeasy-web.service")
    environment = dict(v.split("=", 1) for v in values(parsed, "Service", "Environment"))
    directory = environment["PROMETHEUS_MULTIPROC_DIR"]
    runtime = parsed.get("Service", "RuntimeDirectory")
    assert directory.startswith(f"/run/{runtime}/")
    assert values(parsed, "Service", "ExecStartPre") == [
        f"/bin/rm -rf {directory}",
        f"/bin/mkdir -p {directory}",
    ]
    for name in set(SERVICES.values()) - {"payeasy-web.service"}:  # no second service shares (or empties) it
        assert directory not in (UNITS / name).read_text(encoding="utf-8"), name
    web = commands_of(procfile()["web"])
    assert [w[0] for w in web] == ["export", "rm", "mkdir", "exec"]


# --------------------------------------------------------------------------------------------------------
# The load balancer
# --------------------------------------------------------------------------------------------------------


def events_location() -> re.Pattern[str]:
    text = NGINX.read_text(encoding="utf-8")
    match = re.search(r"location ~ (\S+) \{[^}]*proxy_pass http://payeasy_events;", text)
    assert match, "no location proxies to payeasy_events"
    return re.compile(match.group(1))


def tenant_paths() -> dict[str, str]:
    """URL name → a path of every page of the tenant URLconf, in host mode (as reversed)."""
    paths: dict[str, str] = {}

    def walk(patterns: list[URLPattern | URLResolver], namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, inner)
            elif pattern.name:
                name = namespace + pattern.name
                kwargs = {k: ("abc" if k == "token" else 7) for k in pattern.pattern.regex.groupindex}
                try:
                    paths[name] = reverse(name, urlconf=settings.TENANT_URLCONF, kwargs=kwargs)
                except NoReverseMatch:  # a converter that takes neither: not a page a stream could be
                    continue

    walk(get_resolver(settings.TENANT_URLCONF).url_patterns, "")
    return paths


def test_the_balancer_sends_the_event_streams_and_nothing_else_to_the_asgi_service() -> None:
    location = events_location()
    paths = tenant_paths()
    streams = {name for name in paths if name.endswith("events")}
    assert streams == {"portal:invoice_events", "paylater:events"}, streams
    for name, path in paths.items():
        for shown in (path, f"/b/toto-denryoku{path}"):  # host mode, path mode
            assert bool(location.fullmatch(shown)) == (name in streams), (name, shown)
