#!/usr/bin/env python3
"""Runs README.md's "A five-minute tour" the way a new user would.

Every command of the tour's ```sh blocks is taken from the README itself
(nothing is restated here) and typed, in order, into one bash session in a
fresh directory that sees the checkout's tools/ and build/ (so heraldd's
data directory, herald-data/, starts empty, as on a new machine). What the
README runs in another terminal or in the foreground (tools/run, the
listeners) runs in the background with its output captured. Then the
output is checked against what the README promises: the frame printed by
both listeners within seconds, the held and expired announcements, the dead
letter with its reason, the SRE views, the outbound part with its bad CSV
row, receipts, the stand-in's records, and a clean exit on SIGTERM.

Uses the README's fixed ports (8080, 8081, 9090): ctest runs it alone.
    readme_tour_test.py <source-dir> <build-dir>
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

source_dir, build_dir = sys.argv[1], sys.argv[2]
failures = []


def check(ok, message, detail=""):
    print(("ok: " if ok else "FAIL: ") + message + ("" if ok or not detail else "\n" + detail[-3000:]))
    if not ok:
        failures.append(message)


def tour_steps():
    """{step number: [commands]} from the README's tour, continuation lines joined."""
    readme = open(os.path.join(source_dir, "README.md")).read()
    tour = readme[readme.index("## A five-minute tour"):readme.index("\n## ", readme.index("## A five-minute tour") + 5)]
    steps = {}
    for m in re.finditer(r"^(\d+)\. (.*?)(?=^\d+\. |\Z)", tour, re.S | re.M):
        commands = []
        for block in re.findall(r"```sh\n(.*?)```", m.group(2), re.S):
            lines = textwrap.dedent(block).splitlines()
            i = 0
            while i < len(lines):
                line = lines[i]
                if not line.strip() or line.lstrip().startswith("#"):
                    i += 1
                    continue
                command = line
                heredoc = re.search(r"<<'?(\w+)'?", line)
                if heredoc:  # the whole here-document is one command
                    while i + 1 < len(lines) and lines[i + 1].strip() != heredoc.group(1):
                        i += 1
                        command += "\n" + lines[i]
                    i += 1
                    command += "\n" + lines[i]
                else:
                    while command.rstrip().endswith(("\\", "|")) and i + 1 < len(lines):
                        i += 1
                        command += "\n" + lines[i]
                commands.append(command)
                i += 1
        steps[int(m.group(1))] = commands
    return steps


class shell:
    """One interactive-like bash session; commands run as typed, one at a time."""

    def __init__(self, cwd, env):
        self.p = subprocess.Popen(["bash"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  cwd=cwd, env=env, text=True, bufsize=1)
        self.n = 0

    def run(self, command, timeout=120):
        self.n += 1
        marker = f"__TOUR_DONE_{self.n}__"
        # The marker on a line of its own even when the output does not end
        # in a newline (`| head -c 600`).
        self.p.stdin.write(command + f"\n__tour_rc=$?; printf '\\n{marker} %s\\n' \"$__tour_rc\"\n")
        self.p.stdin.flush()
        out = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.p.stdout.readline()
            if not line:
                break
            if line.startswith(marker):
                text = "".join(out)
                return int(line.split()[1]), text[:-1] if text.endswith("\n") else text
            out.append(line)
        raise TimeoutError(f"no end of: {command}\n{''.join(out)[-2000:]}")

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def wait_for(path, pattern, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and re.search(pattern, open(path, errors="replace").read()):
            return True
        time.sleep(0.1)
    return False


def text(path):
    return open(path, errors="replace").read() if os.path.exists(path) else ""


steps = tour_steps()
check(sorted(steps) == list(range(1, 9)), f"the tour has steps 1..8 (found {sorted(steps)})")
home = tempfile.mkdtemp(prefix="herald-tour-")
for name in ("tools", "build"):
    os.symlink(os.path.join(source_dir, name) if name == "tools" else build_dir, os.path.join(home, name))
env = dict(os.environ)
for k in list(env):
    if k.startswith("HERALD_"):
        del env[k]  # a new user's shell
sh = shell(home, env)
out = os.path.join(home, "out")
os.mkdir(out)
heraldd_pid = None


def start_heraldd(command, log):
    """A tools/run line, in the background (the README runs it in its own terminal)."""
    code, pid = sh.run(f"{command} > {log} 2>&1 &\necho $!")
    return int(pid.split()[-1])


try:
    # 1. Start the engine.
    run_lines = [c for c in steps[1] if c.startswith("tools/run")]
    check(run_lines == ["tools/run"], f"step 1 is tools/run ({steps[1]})")
    heraldd_pid = start_heraldd(run_lines[0], f"{out}/heraldd-1.log")
    check(wait_for(f"{out}/heraldd-1.log", r"heraldd listening client=0\.0\.0\.0:8080 ops=0\.0\.0\.0:8081", 600),
          "tools/run starts heraldd on 8080/8081 and prints where it listens", text(f"{out}/heraldd-1.log"))
    sh.run("until [ \"$(curl -s 127.0.0.1:8081/readyz)\" = ready ]; do sleep 0.2; done", timeout=60)
    check(os.path.exists(f"{home}/herald-data/admin.key") and
          oct(os.stat(f"{home}/herald-data/admin.key").st_mode & 0o777) == "0o600",
          "the first start generated herald-data/admin.key, mode 0600")

    # 2. Subscribe (the README's second terminal): the CLI and curl.
    listeners = [c for c in steps[2] if not c.startswith("#")]
    check(len(listeners) == 2, f"step 2 subscribes twice ({listeners})")
    for i, c in enumerate(listeners):
        sh.run(f"{c} > {out}/listener-{i}.txt 2>&1 &")
    time.sleep(2)

    # 3. Announce: every subscriber prints the same frame, at once.
    code, o = sh.run(steps[3][0])
    check(code == 0 and "announced" in o, "herald announce", o)
    for i in range(2):
        check(wait_for(f"{out}/listener-{i}.txt", r'"audience":"lineup\.rock-am-ring".*"text":"Headliner moved to 21:00"', 3),
              f"subscriber {i} ({listeners[i].split()[0]}) printed the frame within 3 s", text(f"{out}/listener-{i}.txt"))
    for c in steps[3][1:]:
        code, o = sh.run(c)
        check(code == 0, f"step 3: {c.splitlines()[0]}", o)
    code, o = sh.run('echo "brokers=$BROKERS"')
    check(re.search(r"brokers=127\.0\.0\.1:\d+", o) is not None, "BROKERS from /v1/info with the admin key", o)
    for i in range(2):
        check(wait_for(f"{out}/listener-{i}.txt", r'"id":"a1"', 5), f"subscriber {i} got the kcat announcement a1",
              text(f"{out}/listener-{i}.txt"))

    # 4. Held and expiring announcements.
    for c in steps[4]:
        code, o = sh.run(c)
        check(code == 0, f"step 4: {c}", o)
    held_at = time.time()

    # 5. Something broken, found in the dead-letter topic with its reason.
    for c in steps[5][:-1]:
        sh.run(c)
    code, o = sh.run(steps[5][-1], timeout=60)
    check(code == 0 and "invalid_audience" in o, "the broken record is in herald.dlq with its reason", o)

    # 6. The SRE's views.
    code, o = sh.run(steps[6][0])
    check(code == 0 and "herald_announcements_consumed_total" in o, "metrics", o[:500])
    code, o = sh.run(steps[6][1])
    check(o.startswith("ready") and '"bootstrap_servers"' in o, "readyz and /v1/info with the key", o)
    code, o = sh.run(steps[6][2])
    check(code == 0, "herald status", o)

    # The held "Doors open" arrives ~10 s after it was announced, not before.
    for i in range(2):
        early = "Doors open" in text(f"{out}/listener-{i}.txt")
        check(not early or time.time() - held_at >= 9, f"subscriber {i} did not get the held announcement early")
        check(wait_for(f"{out}/listener-{i}.txt", "Doors open", 20), f"subscriber {i} got the held announcement",
              text(f"{out}/listener-{i}.txt"))

    # 7. Outbound: the stand-in, heraldd restarted with it, subscribers, a broadcast.
    standin = steps[7][0].split("#")[0].rstrip()
    check(standin.endswith("&"), f"step 7 starts the stand-in in the background ({standin})")
    sh.run(f"{standin.rstrip('&').rstrip()} > {out}/standin.txt 2>&1 &")
    check(wait_for(f"{out}/standin.txt", "gateway-standin listening on", 20), "the gateway stand-in listens",
          text(f"{out}/standin.txt"))
    os.kill(heraldd_pid, signal.SIGTERM)  # "restart heraldd"; also step 8's Ctrl-C
    code, o = sh.run(f"wait {heraldd_pid}; echo exit=$?", timeout=60)
    check("exit=0" in o, "SIGTERM: heraldd drains and exits 0", o + text(f"{out}/heraldd-1.log")[-1500:])
    check(wait_for(f"{out}/listener-0.txt", r"closed: 1001", 10), "the CLI listener saw close 1001",
          text(f"{out}/listener-0.txt"))
    # What the README does before restarting heraldd (the token file), then tools/run.
    run_at = next((i for i, c in enumerate(steps[7]) if c.startswith("tools/run")), None)
    check(run_at is not None, f"step 7 restarts heraldd with tools/run ({steps[7]})")
    for c in steps[7][1:run_at]:
        code, o = sh.run(c)
        check(code == 0, f"step 7: {c.splitlines()[0]}", o)
    heraldd_pid = start_heraldd(steps[7][run_at], f"{out}/heraldd-2.log")
    check(wait_for(f"{out}/heraldd-2.log", "heraldd listening", 120), "tools/run with the stand-in starts",
          text(f"{out}/heraldd-2.log"))
    sh.run("until [ \"$(curl -s 127.0.0.1:8081/readyz)\" = ready ]; do sleep 0.2; done", timeout=60)
    results = {}
    for c in steps[7][run_at + 1:]:
        code, o = sh.run(c, timeout=120)
        results[c.split("#")[0].strip().splitlines()[0]] = (code, o)
        print(f"$ {c}\n{o}", end="")
    def result(prefix):
        return next((v for k, v in results.items() if k.startswith(prefix)), (None, ""))
    code, o = result("build/bin/herald subscribe --recipient fan-1")
    check(code == 0, "subscribe a webhook subscriber", o)
    code, o = result("build/bin/herald subscribe --recipient fan-2")
    check(code == 0, "subscribe a WhatsApp subscriber", o)
    code, o = result("build/bin/herald import subscribers.csv")
    check(code == 1 and "subscribers.csv:3: address" in o and "imported 1 " in o,
          "import: the good row in, the bad one reported as FILE:LINE: reason", o)
    code, o = result("build/bin/herald status a7")
    check(code == 0 and "broadcast a7" in o, "status a7", o)
    code, o = result("build/bin/herald receipts --broadcast a7")
    check(code == 0 and '"recipient_id":"fan-1"' in o and '"recipient_id":"fan-2"' in o and
          '"recipient_id":"fan-3"' in o, "one receipt per recipient", o)
    code, o = result("build/bin/herald unsubscribe --recipient fan-2")
    check(code == 0, "unsubscribe", o)
    code, o = result("build/bin/herald forget fan-1")
    check(code == 0, "forget", o)
    code, o = result("curl -s 127.0.0.1:9090/_standin/received")
    check("fan-1" in o or "4917612345678" in o, "the stand-in received the deliveries", o)

    # 8. Stop with SIGTERM: drains, exits 0.
    os.kill(heraldd_pid, signal.SIGTERM)
    code, o = sh.run(f"wait {heraldd_pid}; echo exit=$?", timeout=60)
    check("exit=0" in o, "SIGTERM: heraldd exits 0", o + text(f"{out}/heraldd-2.log")[-1500:])
    heraldd_pid = None
except Exception as e:  # a hung command, a missing step
    check(False, f"the tour ran through: {e}")
finally:
    if heraldd_pid:
        try:
            os.kill(heraldd_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    subprocess.run(["pkill", "-f", "gateway-standin --port 9090"], check=False)
    try:
        sh.run("kill $(jobs -p) 2>/dev/null; true", timeout=10)
        sh.close()
    except Exception:
        sh.p.kill()
    shutil.rmtree(home, ignore_errors=True)

print("README tour: " + ("all passed" if not failures else f"{len(failures)} failed: {failures}"))
sys.exit(1 if failures else 0)
