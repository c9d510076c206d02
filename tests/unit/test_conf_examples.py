"""The deployment examples in conf/ are valid and follow the rules they document.

No Docker engine or Kubernetes cluster is needed: the Dockerfile and the manifests are checked
statically, and the forkwsgi command lines in them are checked by forkwsgi itself
(--print-config and --check-config). nginx.conf and haproxy.cfg are checked by `nginx -t` and
`haproxy -c` on a copy whose paths point into a temp dir (skipped when the binary is missing).
"""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.support.ports import free_port
from tests.support.server import ROOT
from tests.support.nginx import TEMP_PATHS, build_info, nginx_binary

CONF = os.path.join(ROOT, "conf")
K8S = os.path.join(CONF, "k8s")


def read(*parts):
    with open(os.path.join(CONF, *parts)) as handle:
        return handle.read()


def forkwsgi(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORKWSGI_")}
    env["PYTHONPATH"] = ROOT
    return subprocess.run([sys.executable, "-m", "forkwsgi"] + list(args), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def effective_settings(args):
    """The settings forkwsgi derives from ``args``: its --print-config output, run as Python."""
    out = forkwsgi("--print-config", *args)
    assert out.returncode == 0, out.stderr
    namespace = {}
    exec(compile(out.stdout, "<print-config>", "exec"), namespace)
    return namespace


def help_flags():
    out = forkwsgi("--help")
    assert out.returncode == 0, out.stderr
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])\b", out.stdout))


def flags_in(args):
    return [arg.split("=", 1)[0] for arg in args if re.match(r"--?[A-Za-z]", arg)]


# ----- Dockerfile

def dockerfile_instructions():
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in read("Dockerfile").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def exec_form(instructions, keyword):
    values = [rest for name, rest in instructions if name == keyword]
    assert values, "no %s in conf/Dockerfile" % keyword
    value = values[-1]
    if keyword == "HEALTHCHECK":
        value = value[value.index("CMD") + 3:].strip()
    try:
        parsed = json.loads(value)
    except ValueError:
        pytest.fail("%s is in shell form (%r): forkwsgi would not be PID 1 or get TERM" % (keyword, value))
    assert isinstance(parsed, list) and all(isinstance(part, str) for part in parsed), value
    return parsed


def test_dockerfile_runs_forkwsgi_as_pid_1_in_exec_form():
    instructions = dockerfile_instructions()
    base = [rest for name, rest in instructions if name == "FROM"]
    assert base and re.match(r"python:[\d.]+-slim", base[-1]), base
    entrypoint = exec_form(instructions, "ENTRYPOINT")
    assert entrypoint in (["forkwsgi"], ["python", "-m", "forkwsgi"]), entrypoint
    exec_form(instructions, "CMD")
    stop = [rest for name, rest in instructions if name == "STOPSIGNAL"]
    assert stop in ([], ["SIGTERM"]), stop


def test_dockerfile_user_is_not_root():
    users = [rest for name, rest in dockerfile_instructions() if name == "USER"]
    assert users, "conf/Dockerfile never leaves root (no USER)"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]


def test_dockerfile_copies_what_exists_in_the_build_context():
    for name, rest in dockerfile_instructions():
        if name == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert os.path.exists(os.path.join(ROOT, source)), "COPY %s: not in the repository root" % source


def test_dockerfile_command_line_is_valid_for_forkwsgi():
    instructions = dockerfile_instructions()
    args = exec_form(instructions, "CMD")
    unknown = set(flags_in(args)) - help_flags()
    assert not unknown, "flags not in forkwsgi --help: %s" % sorted(unknown)
    settings = effective_settings(args)
    assert settings["health_path"], "the image should set --health-path"
    assert 0 < settings["shutdown_delay"] <= 30, settings["shutdown_delay"]
    out = forkwsgi("--check-config", *args)
    assert out.returncode == 0, out.stdout + out.stderr
    # the HEALTHCHECK asks the health path on the bound port
    check = " ".join(exec_form(instructions, "HEALTHCHECK"))
    port = settings["bind"][0].rsplit(":", 1)[1]
    assert ":%s%s" % (port, settings["health_path"]) in check, check


# ----- Kubernetes manifests

def load_yaml_documents(path):
    """Every document of a YAML file: with PyYAML, else with a system python3 that has it, else None."""
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        with open(path) as handle:
            return [doc for doc in yaml.safe_load_all(handle) if doc is not None]
    for python in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(python, os.X_OK):
            out = subprocess.run([python, "-c", "import json, sys, yaml; "
                                  "json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None],"
                                  " sys.stdout)", path], capture_output=True, text=True, timeout=30)
            if out.returncode == 0:
                return json.loads(out.stdout)
    return None


@pytest.fixture(scope="module")
def manifests():
    docs = {}
    for name in ("deployment", "service", "pdb", "hpa"):
        loaded = load_yaml_documents(os.path.join(K8S, name + ".yaml"))
        if loaded is None:
            pytest.skip("PyYAML is not installed (here nor for a system python3): pip install pyyaml "
                        "to parse conf/k8s/; the grace-period rule is still checked without it")
        assert len(loaded) == 1, "%s.yaml: expected one document" % name
        docs[name] = loaded[0]
    return docs


def container(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_grace_period_exceeds_shutdown_delay_plus_graceful_timeout_without_yaml():
    """The rule, from the text alone: terminationGracePeriodSeconds > graceful_timeout + shutdown_delay."""
    text = read("k8s", "deployment.yaml")
    grace = re.findall(r"^\s*terminationGracePeriodSeconds:\s*(\d+)\s*$", text, re.M)
    assert len(grace) == 1, grace
    args = re.findall(r"^\s*-\s+(--[a-z-]+(?:=\S+)?|[\w.]+:\w+)\s*$", text, re.M)
    settings = effective_settings(args)
    assert int(grace[0]) > settings["graceful_timeout"] + settings["shutdown_delay"], (grace, args)
    assert "preStop" not in re.sub(r"#.*", "", text), "no preStop sleep: --shutdown-delay replaces it"


def test_deployment_probes_grace_period_and_resources(manifests):
    deployment = manifests["deployment"]
    assert deployment["kind"] == "Deployment"
    pod = deployment["spec"]["template"]["spec"]
    app = container(deployment)
    args = app["args"]
    assert not set(flags_in(args)) - help_flags(), args
    settings = effective_settings(args)
    out = forkwsgi("--check-config", *args)
    assert out.returncode == 0, out.stdout + out.stderr

    health = settings["health_path"]
    assert health and settings["shutdown_delay"] > 0, settings
    assert app["readinessProbe"]["httpGet"]["path"] == health
    assert "livenessProbe" in app
    port_names = {port.get("name"): port["containerPort"] for port in app["ports"]}
    bound_port = int(settings["bind"][0].rsplit(":", 1)[1])
    assert bound_port in port_names.values(), (settings["bind"], app["ports"])
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe in app:
            target = app[probe].get("httpGet") or app[probe].get("tcpSocket")
            port = target["port"]
            assert port_names.get(port, port) == bound_port, (probe, port)

    grace = pod["terminationGracePeriodSeconds"]
    assert grace > settings["graceful_timeout"] + settings["shutdown_delay"], (
        grace, settings["graceful_timeout"], settings["shutdown_delay"])
    assert "preStop" not in app.get("lifecycle", {}), "no preStop sleep: --shutdown-delay replaces it"
    assert "shutdown-delay" in read("k8s", "deployment.yaml").split("apiVersion")[0]  # the comment says so

    resources = app["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    security = pod.get("securityContext", {})
    assert security.get("runAsNonRoot") is True and security.get("runAsUser", 0) != 0


def test_service_pdb_and_hpa_point_at_the_deployment(manifests):
    deployment, service, pdb, hpa = (manifests[name] for name in ("deployment", "service", "pdb", "hpa"))
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()

    assert service["kind"] == "Service"
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {port.get("name"): port["containerPort"] for port in container(deployment)["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in port_names or port["targetPort"] in port_names.values(), port

    assert pdb["kind"] == "PodDisruptionBudget" and pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]

    assert hpa["kind"] == "HorizontalPodAutoscaler" and hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # the PDB can let a pod go at the smallest scale
    if "minAvailable" in pdb["spec"]:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


# ----- nginx

def directives(text, name):
    return re.findall(r"^[ \t]*%s[ \t]+([^;{]*);" % re.escape(name), re.sub(r"#.*", "", text), re.M)


def test_nginx_conf_balances_with_keepalive_passive_checks_and_safe_retries():
    text = read("nginx.conf")
    servers = directives(text, "server")
    assert len(servers) >= 2
    for server in servers:
        assert "max_fails=" in server and "fail_timeout=" in server, server
    assert directives(text, "keepalive")
    assert directives(text, "proxy_http_version") and all(v == "1.1" for v in directives(text, "proxy_http_version"))
    assert 'Connection ""' in directives(text, "proxy_set_header")
    next_upstream = directives(text, "proxy_next_upstream")
    assert next_upstream and all("non_idempotent" not in value for value in next_upstream), next_upstream
    assert any({"error", "timeout"} <= set(value.split()) for value in next_upstream), next_upstream
    # nginx closes an idle pooled connection before forkwsgi (--keepalive, default 5 s) does
    idle = directives(text, "keepalive_timeout")
    assert idle and all(float(value.rstrip("s")) < effective_settings([])["keepalive"] for value in idle), idle


def test_nginx_accepts_the_example_config(tmp_path):
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (not on PATH nor in /usr/sbin)")
    version, info = build_info(binary)
    text = read("nginx.conf")
    # every path the example names goes into the temp dir; the port becomes a free one
    text = re.sub(r"^(\s*)user\s+[^;]*;", r"\1# user (dropped for the test)", text, flags=re.M)
    text = re.sub(r"^(\s*pid)\s+[^;]*;", r"\1 %s/nginx.pid;" % tmp_path, text, flags=re.M)
    text = re.sub(r"^(\s*error_log)\s+\S+", r"\1 %s/error.log" % tmp_path, text, flags=re.M)
    text = re.sub(r"^(\s*access_log)\s+/\S+", r"\1 %s/access.log" % tmp_path, text, flags=re.M)
    text = re.sub(r"^(\s*listen)\s+80;", r"\1 127.0.0.1:%d;" % free_port(), text, flags=re.M)
    temp_paths = "".join("    %s %s/%s;\n" % (directive, tmp_path, directive) for directive, module in TEMP_PATHS
                         if module is None or "--without-http_%s_module" % module not in info)
    text = re.sub(r"^http\s*\{\n", lambda m: m.group(0) + temp_paths, text, count=1, flags=re.M)
    assert "/var/" not in re.sub(r"#.*", "", text) and "/run/" not in re.sub(r"#.*", "", text), text
    config = tmp_path / "nginx.conf"
    config.write_text(text)
    argv = [binary, "-t", "-p", str(tmp_path), "-c", str(config)]
    if version >= (1, 19, 5):
        argv += ["-e", str(tmp_path / "error.log")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "test is successful" in out.stderr


# ----- HAProxy

def test_haproxy_cfg_checks_the_health_path_and_retries_safely():
    text = re.sub(r"#.*", "", read("haproxy.cfg"))
    assert re.search(r"^\s*option\s+httpchk\b", text, re.M)
    health = effective_settings(exec_form(dockerfile_instructions(), "CMD"))["health_path"]
    assert re.search(r"^\s*http-check\s+send\s+.*\buri\s+%s\b" % re.escape(health), text, re.M), health
    assert re.search(r"^\s*http-check\s+expect\s+status\s+200\b", text, re.M)
    retry_on = re.findall(r"^\s*retry-on\s+(.*)$", text, re.M)
    assert retry_on and {"conn-failure", "empty-response"} <= set(retry_on[-1].split()), retry_on
    assert re.search(r"^\s*retries\s+\d+", text, re.M)
    # HAProxy would replay a POST on empty-response: only safe methods get layer-7 retries
    assert re.search(r"^\s*http-request\s+disable-l7-retry\s+(if|unless)\s+", text, re.M)
    servers = re.findall(r"^\s*server\s+\S+\s+\S+", text, re.M)
    assert len(servers) >= 2 and re.search(r"^\s*default-server\s+.*\bcheck\b", text, re.M)


def test_haproxy_accepts_the_example_config(tmp_path):
    binary = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None)
    if binary is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy to check conf/haproxy.cfg)")
    text = read("haproxy.cfg")
    text = re.sub(r"^(\s*stats socket)\s+\S+", r"\1 %s/admin.sock" % tmp_path, text, flags=re.M)
    text = re.sub(r"^(\s*)(user|group)\s+\S+\s*$", r"\1# \2 (dropped for the test)", text, flags=re.M)
    text = re.sub(r"^(\s*bind)\s+:80\b", r"\1 127.0.0.1:%d" % free_port(), text, flags=re.M)
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    out = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
