"""The ``tcpdive`` command: the article's experiments, sysctls, benchmarks."""

from __future__ import annotations

import argparse
import sys
import time

from . import __version__


def _parse_sysctl(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v.strip()


def _print_result(res, verbose: bool = True) -> None:
    print(f"== {res.name}: {res.title}")
    print(f"   article: {res.article}")
    if verbose:
        for title, lines in res.sections:
            print(f"\n-- {title}")
            for line in lines:
                print("   " + line)
        print()
    for c in res.claims:
        mark = "PASS" if c.ok else "FAIL"
        print(f"   [{mark}] {c.text}" + (f"\n          {c.evidence}" if c.evidence and (verbose or not c.ok) else ""))


def cmd_scenario(args: argparse.Namespace) -> int:
    from .scenarios import Options, load_all

    reg = load_all()
    if args.name not in reg:
        print(f"tcpdive: unknown scenario {args.name!r} (have: {', '.join(reg)})", file=sys.stderr)
        return 2
    opts = Options(sysctls=args.sysctl or [], pcap=args.pcap, trace=args.trace, seed=args.seed)
    res = reg[args.name].run(opts)
    _print_result(res, verbose=True)
    if args.pcap:
        print(f"\n   pcap written to {args.pcap}")
    if args.report:
        from .tools.report import write_report

        write_report(args.report, [res])
        print(f"   report written to {args.report}")
    return 0 if res.ok else 1


def _progress(i: int, n: int, name: str, t0: float) -> None:
    """One-line progress bar on stderr (a TTY) or a plain line (a pipe)."""
    width = 28
    done = int(width * i / n)
    bar = "#" * done + "-" * (width - done)
    msg = f"[{bar}] {i}/{n} {name} ({time.perf_counter() - t0:.1f} s)"
    if sys.stderr.isatty():
        print("\r" + msg.ljust(79), end="" if i < n else "\n", file=sys.stderr, flush=True)
    else:
        print(msg, file=sys.stderr, flush=True)


def cmd_tour(args: argparse.Namespace) -> int:
    from .scenarios import Options, load_all

    reg = load_all()
    names = list(reg)
    if args.only:
        names = [n for n in names if n in args.only]
    t0 = time.perf_counter()
    failed = 0
    results = []
    for i, name in enumerate(names, 1):
        sc = reg[name]
        _progress(i - 1, len(names), sc.name, t0)
        res = sc.run(Options(seed=args.seed))
        results.append(res)
        failed += not res.ok
        _progress(i, len(names), sc.name, t0)
        _print_result(res, verbose=not args.quiet)
        print()
    dt = time.perf_counter() - t0
    print(f"{len(results) - failed} passed, {failed} failed ({dt:.1f} s wall)")
    if args.report:
        from .tools.report import write_report

        write_report(args.report, results, dt)
        print(f"report written to {args.report}")
    return 1 if failed else 0


def cmd_sysctl(args: argparse.Namespace) -> int:
    from .sysctl import Sysctl

    s = Sysctl()
    try:
        for kv in args.write or []:
            k, v = _parse_sysctl(kv)
            print(s.set(k, v))
        if args.write:
            return 0
        for line in s.lines(args.pattern):
            print(line)
    except OSError as e:
        print(e.strerror if e.strerror and e.strerror.startswith("sysctl") else f"sysctl: {e}",
              file=sys.stderr)
        return 1
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if getattr(args, "goodput", False):
        from .tools.bench import run_goodput

        return run_goodput(real=getattr(args, "real", False))
    if getattr(args, "real", False):
        from .real.bench import run_real_bench

        return run_real_bench(quick=args.quick)
    from .tools.bench import run_bench

    return run_bench(quick=args.quick, pypy=args.pypy)


def cmd_packetdrill(args: argparse.Namespace) -> int:
    """Run packetdrill scripts against a fresh tcpdive host each, in virtual time."""
    from .packetdrill.linux import LinuxResults
    from .packetdrill.runner import collect_scripts, run_script, summary

    paths = collect_scripts(args.paths)
    linux = LinuxResults()
    known = same = 0
    if not paths:
        print("tcpdive packetdrill: no .pkt scripts found", file=sys.stderr)
        return 2
    results = []
    for path in paths:
        res = run_script(path, tolerance_usecs=args.tolerance_usecs,
                         strict_segments=args.strict_segments, verbose=args.verbose)
        results.append(res)
        lx = linux.lookup(path)
        if lx is not None and res.verdict != "SKIP":
            known += 1
            same += linux.agrees(res.verdict, res.reason, lx)
        print(res.line() + linux.note(path, res.verdict, res.reason), flush=True)
        if args.verbose:
            for line in res.trace:
                print("    " + line)
            if res.verdict in ("FAIL", "ERROR") and res.details != res.reason:
                for line in res.details.splitlines():
                    print("    " + line)
    print(summary(results) + (f"; {same} of {known} run behave as on Linux 6.18"
                              if known else ""))
    return 0 if all(r.verdict in ("PASS", "SKIP") for r in results) else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tcpdive",
        description="The Linux TCP/IP stack rebuilt in Python: watch it, test against it, change it.")
    p.add_argument("--version", action="version", version=f"tcpdive {__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    t = sub.add_parser("tour", help="replay the article's experiments and check each claim")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("-q", "--quiet", action="store_true", help="claims only, no evidence")
    t.add_argument("--report", metavar="FILE", default="tcpdive-report.html",
                   help="write the HTML report here (default ./tcpdive-report.html; '' for none)")
    t.add_argument("--only", action="append", metavar="NAME", help="run only these scenarios")
    t.set_defaults(fn=cmd_tour)
    s = sub.add_parser("scenario", help="run one experiment: tcpdive scenario handshake")
    s.add_argument("name")
    s.add_argument("--sysctl", action="append", type=_parse_sysctl, metavar="NAME=VALUE")
    s.add_argument("--pcap", metavar="FILE", help="write every packet to a pcap file")
    s.add_argument("--trace", action="store_true", help="print tracepoint events")
    s.add_argument("--report", metavar="FILE", help="also write an HTML report of this scenario")
    s.add_argument("--seed", type=int, default=1)
    s.set_defaults(fn=cmd_scenario)
    y = sub.add_parser("sysctl", help="list tcpdive's sysctls like `sysctl -a | grep PATTERN`")
    y.add_argument("pattern", nargs="?")
    y.add_argument("-w", "--write", action="append", metavar="NAME=VALUE",
                   help="validate a setting as `sysctl -w` would")
    y.set_defaults(fn=cmd_sysctl)
    b = sub.add_parser("bench", help="print simulator speed and memory figures next to Linux")
    b.add_argument("--quick", action="store_true", help="smaller runs")
    b.add_argument("--pypy", metavar="PATH",
                   help="PyPy 3.11 to run the simulator figures on too (default: $TCPDIVE_PYPY, "
                        "pypy3.11 on PATH, or scripts/install-pypy's)")
    b.add_argument("--goodput", action="store_true",
                   help="CUBIC and Reno goodput over 100 Mbit/s, 40 ms RTT, 1%% loss (issue #8 path); "
                        "with --real also Linux's own over the same impaired path")
    b.add_argument("--real", action="store_true",
                   help="bulk tcpdive <-> kernel over TUN (root) next to kernel <-> kernel over veth")
    b.set_defaults(fn=cmd_bench)
    d = sub.add_parser("packetdrill", help="run Linux packetdrill scripts against tcpdive")
    d.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    d.add_argument("--tolerance_usecs", type=int, default=None,
                   help="timing tolerance (default: the script's, else 4000)")
    d.add_argument("--strict_segments", action="store_true",
                   help="do not merge consecutive segments to match one scripted packet")
    d.add_argument("-v", "--verbose", action="store_true", help="packet trace and full dumps")
    d.set_defaults(fn=cmd_packetdrill)
    from .real.cli import add_parser as add_real_parser

    add_real_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 0
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`tcpdive tour | head`): exit quietly like a Unix tool
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (OSError, ValueError) as e:
        print(f"tcpdive: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
