#!/usr/bin/env python3
"""Checks the deployment files against what they promise (run by ctest as Deploy.*).

  compose   docker/compose.yaml: the services, Lagoon published on localhost only, migrations (via
            scripts/bootstrap) before serve, the same commands `make run` runs; `docker compose config`
            when the docker compose plugin exists (there is no Docker engine on the build machines).
  image     docker/Dockerfile: Debian 12 stages, a non-root user, a HEALTHCHECK on /healthz, and a
            runtime package for every shared library the built binaries link directly.
  systemd   config/lagoon.service passes `systemd-analyze verify` without a single complaint.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("LAGOON_BUILD_DIR", os.path.join(ROOT, "build"))
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def compose():
    doc = yaml.safe_load(read("docker/compose.yaml"))
    services = doc.get("services", {})
    check(set(services) == {"postgres", "redis", "mock", "init", "lagoon"}, f"services are {sorted(services)}")
    for name, svc in services.items():
        for port in svc.get("ports", []):
            check(str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost")
        if name != "lagoon":
            check(not svc.get("ports"), f"{name} should not publish ports")
    lagoon, init, mock = services.get("lagoon", {}), services.get("init", {}), services.get("mock", {})
    check(lagoon.get("ports") == ["127.0.0.1:8080:8080"], f"lagoon ports {lagoon.get('ports')}")
    check(lagoon.get("command") == ["serve"], "lagoon runs `lagoon serve` (the image's entrypoint is lagoon)")
    check(lagoon.get("depends_on", {}).get("init", {}).get("condition") == "service_completed_successfully",
          "lagoon starts only after init (migrations) succeeded")
    check(init.get("entrypoint") == ["lagoon-bootstrap"], "init runs scripts/bootstrap (migrate + demo key)")
    for dep in ("postgres", "redis"):
        check(init.get("depends_on", {}).get(dep, {}).get("condition") == "service_healthy",
              f"init waits for a healthy {dep}")
    check(mock.get("entrypoint") == ["lagoon-mock-upstream"], "mock runs the bundled mock upstream")
    check("--listen" in mock.get("command", []) and "--api-key" in mock.get("command", []),
          "mock gets --listen and --api-key as in make run")
    check(any("postgres-data" in v for v in services.get("postgres", {}).get("volumes", [])), "postgres has a volume")
    check(any(str(v).endswith(":/var/lib/lagoon/usage") for v in lagoon.get("volumes", [])),
          "the usage queue and journal are on a volume")
    env = init.get("environment", {})
    for var in ("LAGOON_DATABASE_URL", "LAGOON_REDIS_URL", "LAGOON_KEY_PEPPER", "LAGOON_UPSTREAM_URL"):
        check(var in env and var in lagoon.get("environment", {}), f"{var} given to init and lagoon alike")
    # The same commands as make run: scripts/run-local runs scripts/bootstrap, then `lagoon serve`.
    run_local = read("scripts/run-local")
    check(re.search(r"^LAGOON_BIN=build/lagoon scripts/bootstrap$", run_local, re.M), "run-local runs scripts/bootstrap")
    check(re.search(r"^build/lagoon serve", run_local, re.M), "run-local runs `lagoon serve`")
    check(re.search(r"lagoon-mock-upstream --listen \S+ --api-key", run_local), "run-local starts the mock the same way")
    bootstrap = read("scripts/bootstrap")
    check('"$bin" migrate' in bootstrap, "bootstrap migrates")
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        r = subprocess.run(["docker", "compose", "-f", os.path.join(ROOT, "docker/compose.yaml"), "config", "-q"],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"docker compose config: {r.stderr.strip()}")
    else:
        print("docker compose is not installed here: structural checks only")


def image():
    text = read("docker/Dockerfile")
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    check(len(stages) >= 2 and all(s.startswith("debian:bookworm") for s in stages), f"stages {stages}")
    final = text[text.rfind("\nFROM "):]
    users = re.findall(r"^USER\s+(\S+)", final, re.M)
    check(users and users[-1] not in ("root", "0"), "the final stage runs as a non-root user")
    check(re.search(r"^HEALTHCHECK .*/healthz", final, re.M | re.S), "HEALTHCHECK on /healthz")
    check("COPY scripts/bootstrap /usr/local/bin/lagoon-bootstrap" in final, "the image carries scripts/bootstrap")
    runtime = set()
    for block in re.findall(r"apt-get install[^\n]*\\\n((?:[^\n]*\\\n)*[^\n]*)", final):
        runtime.update(w for w in re.split(r"[\s\\&]+", block) if re.match(r"^[a-z0-9][a-z0-9.+-]+$", w))
    # Every library the binaries need directly must come from a package the final stage installs
    # (or from the base image's essentials).
    base = {"libc6", "libstdc++6", "libgcc-s1"}
    for binary in ("lagoon", "lagoon-mock-upstream"):
        path = os.path.join(BUILD, binary)
        if not os.path.exists(path):
            failures.append(f"{path} is not built")
            continue
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                            subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout)
        for lib in needed:
            owner = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True).stdout
            pkgs = {line.split(":")[0] for line in owner.splitlines() if "/" in line}
            check(pkgs & (runtime | base), f"{binary} needs {lib} ({', '.join(sorted(pkgs)) or 'no package'}), "
                                           f"which the final stage does not install")


def systemd():
    unit = read("config/lagoon.service")
    for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=", "EnvironmentFile=",
                   "Restart=on-failure", "Type=notify"):
        check(option in unit, f"lagoon.service lacks {option}")
    if not shutil.which("systemd-analyze"):
        print("systemd-analyze is not installed here: option checks only")
        return
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "lagoon.service")
        with open(path, "w") as f:  # the binary where this build left it
            f.write(unit.replace("/usr/local/bin/lagoon", os.path.join(BUILD, "lagoon")))
        r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)
        complaints = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
        check(r.returncode == 0 and not complaints, "systemd-analyze verify: " + " | ".join(complaints))


if __name__ == "__main__":
    {"compose": compose, "image": image, "systemd": systemd}[sys.argv[1]]()
    for f in failures:
        print("FAIL:", f)
    sys.exit(1 if failures else 0)
