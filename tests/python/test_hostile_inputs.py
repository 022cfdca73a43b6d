"""The hostile files of hostile_files.py through the `tracetorch` program: each must end with exit
code 1 and one line on stderr that names the file and the problem, within seconds and without
using much memory; the controls must succeed. Every case must be a row of docs/hostile-inputs.md,
so that the table stays true."""
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("TT_BINARY_DIR", "build")
SOURCE = os.environ.get("TT_SOURCE_DIR", os.path.join(HERE, "..", ".."))
CLI = os.path.join(BUILD, "tools", "tracetorch")
MAX_SECONDS = 20
MAX_RSS_MB = 1536  # LibTorch alone needs about 200 MB (far more under a sanitizer); a 3 GB reserve must not happen


def main():
    failures = []
    with open(os.path.join(SOURCE, "docs", "hostile-inputs.md")) as f:
        doc = f.read()
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, os.path.join(HERE, "hostile_files.py"), d], check=True)
        with open(os.path.join(d, "manifest.json")) as f:
            manifest = json.load(f)
        for case in manifest:
            name, path = case["name"], os.path.join(d, case["file"])
            if "`%s`" % name not in doc:
                failures.append("%s: not in docs/hostile-inputs.md" % name)
            command = [CLI, "info" if case["kind"] == "pt" else "arch", path]
            start = time.monotonic()
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            r = subprocess.run(command, capture_output=True, text=True, timeout=MAX_SECONDS * 3)
            seconds = time.monotonic() - start
            # ru_maxrss of all children so far: only a new maximum says something about this run.
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            grew = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss > before
            if seconds > MAX_SECONDS:
                failures.append("%s: took %.1f s" % (name, seconds))
            if grew and peak_mb > MAX_RSS_MB:
                failures.append("%s: used %.0f MB" % (name, peak_mb))
            if case["expect"] is None:
                if r.returncode != 0:
                    failures.append("%s: control failed: %s" % (name, r.stderr.strip()))
                continue
            lines = r.stderr.strip().splitlines()
            if r.returncode != 1 or len(lines) != 1:
                failures.append("%s: exit %d, stderr %r" % (name, r.returncode, r.stderr[-2000:]))
                continue
            if path not in lines[0] or case["expect"] not in lines[0]:
                failures.append("%s: expected %r in %r" % (name, case["expect"], lines[0]))
            print("ok %-28s %5.2f s  %s" % (name, seconds, lines[0][len(d) + 1:][:110]))
    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
