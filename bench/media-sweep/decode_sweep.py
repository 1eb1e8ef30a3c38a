#!/usr/bin/env python3
"""Decodes a generated sweep (generate.py's folder) with `avmae-serve decode --crops 4`, as the server does,
and classifies every file: decoded, refused with an error, or crashed (the process died of a signal or hung).
Python 3 standard library only.

  decode_sweep.py --bin BIN DIR                    # natively, default settings
  decode_sweep.py --bin BIN --guard-pages DIR      # natively, AVMAE_GUARD_PAGES=1
  decode_sweep.py --bin STRIPPED --memcheck DIR    # under valgrind memcheck (a stripped binary: see README)
  decode_sweep.py --table DIR                      # the counts of every run so far, as a Markdown table

One process decodes many files (valgrind's start-up is seconds). When a process dies, its buffered output is
lost with it, so every file it did not report on is decoded again alone: the crashing file is then exact.
Under memcheck the files go in chunks; a chunk with errors is re-run file by file to name the files, and each
file's valgrind log is kept. Writes DIR/results-MODE.json and prints one summary line; exits 1 on a finding
(a crash, a memcheck error, or a file whose outcome differs from the manifest's expectation).
"""
import argparse
import concurrent.futures
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time

VALGRIND = ["valgrind", "--tool=memcheck", "--error-exitcode=99", "--leak-check=full",
            "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite", "--num-callers=40"]


def run_decoder(command, env, files, timeout, extra=()):
    """Runs one decoder process over `files`; returns ({file: report}, how the process ended)."""
    try:
        done = subprocess.run(command + ["decode", "--crops", "4", *extra] + files, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        output, ending = expired.stdout or "", f"hung (killed after {timeout} s)"
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
    else:
        output = done.stdout
        ending = f"signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
    reports = {}
    for line in output.splitlines():
        try:
            report = json.loads(line)
        except json.JSONDecodeError:
            continue
        reports[report["file"]] = report
    return reports, ending


def memcheck_errors(log_path):
    with open(log_path, errors="replace") as f:
        text = f.read()
    found = re.findall(r"ERROR SUMMARY: (\d+) errors", text)
    return int(found[-1]) if found else None


class Sweep:
    def __init__(self, args):
        self.args = args
        with open(os.path.join(args.dir, "manifest.json")) as f:
            self.manifest = json.load(f)
        self.entries = [e for e in self.manifest["files"] if "generation_problems" not in e]
        self.paths = [os.path.join(args.dir, e["file"]) for e in self.entries]
        self.env = dict(os.environ)
        if args.guard_pages:
            self.env["AVMAE_GUARD_PAGES"] = "1"
        self.mode = "memcheck" if args.memcheck else "guard-pages" if args.guard_pages else "native"
        self.extra = ["--stream"] if args.stream else []
        if args.stream:
            self.mode += "-stream"
        self.logs = os.path.join(args.dir, f"logs-{self.mode}")
        self.results = {}   # path -> {"outcome": ..., ...}

    def command(self, log=None):
        if not self.args.memcheck:
            return [self.args.bin]
        return VALGRIND + [f"--log-file={log}", self.args.bin]

    def decode(self, files, log=None, timeout=None):
        return run_decoder(self.command(log), self.env, files, timeout or self.args.timeout, self.extra)

    def record(self, path, report, ending, errors=None):
        if report is None:
            result = {"outcome": "crashed", "ending": ending}
        elif report["ok"]:
            result = {"outcome": "ok", "milliseconds": report["milliseconds"], "video": report.get("video"),
                      "audio": report.get("audio")}
        else:
            result = {"outcome": "refused", "error": report["error"], "milliseconds": report["milliseconds"]}
        if errors is not None:
            result["memcheck_errors"] = errors
        self.results[path] = result

    def alone(self, path):
        """Decodes one file in its own process: the exact outcome when a shared process died."""
        log = os.path.join(self.logs, os.path.basename(path) + ".log") if self.args.memcheck else None
        reports, ending = self.decode([path], log)
        errors = memcheck_errors(log) if log else None
        self.record(path, reports.get(path), ending, errors)
        return errors

    def chunk(self, files, index):
        log = os.path.join(self.logs, f"chunk-{index:03d}.log") if self.args.memcheck else None
        reports, ending = self.decode(files, log)
        errors = memcheck_errors(log) if log else None
        died = not ending.startswith("exit") or any(path not in reports for path in files)
        if died or (self.args.memcheck and errors != 0):
            # Name the files: every one again, alone (its own log), when the shared process died or erred.
            for path in files:
                self.alone(path)
            return
        for path in files:
            self.record(path, reports[path], ending, errors)
        if log:
            os.remove(log)

    def run(self):
        os.makedirs(self.logs, exist_ok=True)
        size = self.args.chunk if self.args.memcheck else len(self.paths)
        chunks = [self.paths[i:i + size] for i in range(0, len(self.paths), size)]
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.args.jobs if self.args.memcheck else 1) as pool:
            list(pool.map(lambda ic: self.chunk(ic[1], ic[0]), enumerate(chunks)))
        wall = time.monotonic() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, usage.ru_utime + usage.ru_stime

    def summary(self, wall, cpu):
        files = []
        for entry, path in zip(self.entries, self.paths):
            result = dict(self.results[path], file=entry["file"], expect=entry["expect"])
            result["unexpected"] = result["outcome"] in ("ok", "refused") and result["outcome"] != entry["expect"]
            files.append(result)
        count = lambda key, value: sum(1 for f in files if f.get(key) == value)
        errors = sum(f.get("memcheck_errors") or 0 for f in files)
        findings = [f for f in files if f["outcome"] == "crashed" or f.get("memcheck_errors") or f["unexpected"]]
        decode_ms = sum(f.get("milliseconds", 0) for f in files)
        summary = {
            "mode": self.mode, "files": len(files), "ok": count("outcome", "ok"), "refused": count("outcome", "refused"),
            "crashed": count("outcome", "crashed"), "unexpected": sum(f["unexpected"] for f in files),
            "memcheck_errors": errors if self.args.memcheck else None,
            "memcheck_files_with_errors": sum(1 for f in files if f.get("memcheck_errors")) if self.args.memcheck else None,
            "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "decode_seconds_sum": round(decode_ms / 1000, 1),
            "slowest": sorted(((round(f.get("milliseconds", 0) / 1000, 2), f["file"]) for f in files), reverse=True)[:3],
        }
        with open(os.path.join(self.args.dir, f"results-{self.mode}.json"), "w") as f:
            json.dump({"summary": summary, "files": files}, f, indent=1)
        if not os.listdir(self.logs):
            shutil.rmtree(self.logs)
        return summary, findings


def print_table(folder):
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    c = manifest["coverage"]
    if c:
        print(f"{len(manifest['files'])} files generated in {manifest['seconds']} s; pairs of factor values: {c['pairs']} = "
              f"{c['encodable']} encodable (covered: {c['covered']}) + {c['impossible']} impossible + {c['not_applicable']} not applicable")
    print("| run | files | ok | refused | crashed | unexpected outcome | memcheck errors | wall s | CPU s | decode s (sum) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode in ("native", "guard-pages", "memcheck", "native-stream", "guard-pages-stream", "memcheck-stream"):
        path = os.path.join(folder, f"results-{mode}.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            s = json.load(f)["summary"]
        errors = "-" if s["memcheck_errors"] is None else f"{s['memcheck_errors']} ({s['memcheck_files_with_errors']} files)"
        print(f"| {mode} | {s['files']} | {s['ok']} | {s['refused']} | {s['crashed']} | {s['unexpected']} | {errors} | "
              f"{s['wall_seconds']} | {s['cpu_seconds']} | {s['decode_seconds_sum']} |")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", help="a folder written by generate.py")
    parser.add_argument("--bin", help="avmae-serve (a stripped copy for --memcheck)")
    parser.add_argument("--table", action="store_true", help="print the results of the runs so far and exit")
    parser.add_argument("--guard-pages", action="store_true", help="AVMAE_GUARD_PAGES=1")
    parser.add_argument("--memcheck", action="store_true", help="under valgrind memcheck")
    parser.add_argument("--stream", action="store_true", help="decode window by window from the file (?stream=true)")
    parser.add_argument("--chunk", type=int, default=12, help="files per valgrind process")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="valgrind processes at once")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one decoder process may take")
    args = parser.parse_args()
    if args.table:
        return print_table(args.dir)
    if not args.bin:
        parser.error("--bin is required")
    if args.memcheck and not shutil.which("valgrind"):
        sys.exit("decode_sweep.py: valgrind is not installed (apt-get install valgrind)")
    sweep = Sweep(args)
    wall, cpu = sweep.run()
    summary, findings = sweep.summary(wall, cpu)
    print(json.dumps(summary))
    for f in findings:
        print(f"  FINDING {f['file']}: {f['outcome']}" + (f", {f['memcheck_errors']} memcheck errors" if f.get("memcheck_errors") else "")
              + (f" (expected {f['expect']}: {f.get('error', '')})" if f["unexpected"] else "")
              + (f" [{f['ending']}]" if f.get("ending") else ""), file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
