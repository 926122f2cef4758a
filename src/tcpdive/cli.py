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
    return 0 if res.ok else 1


def cmd_tour(args: argparse.Namespace) -> int:
    from .scenarios import Options, load_all

    reg = load_all()
    t0 = time.perf_counter()
    failed = 0
    results = []
    for i, sc in enumerate(reg.values(), 1):
        print(f"[{i}/{len(reg)}] {sc.name} ...", flush=True)
        res = sc.run(Options(seed=args.seed))
        results.append(res)
        _print_result(res, verbose=not args.quiet)
        failed += not res.ok
        print()
    dt = time.perf_counter() - t0
    print(f"{len(results) - failed} passed, {failed} failed ({dt:.1f} s wall)")
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
    from .tools.bench import run_bench

    return run_bench(quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tcpdive",
        description="The Linux TCP/IP stack rebuilt in Python: watch it, test against it, change it.")
    p.add_argument("--version", action="version", version=f"tcpdive {__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    t = sub.add_parser("tour", help="replay the article's experiments and check each claim")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("-q", "--quiet", action="store_true", help="claims only, no evidence")
    t.set_defaults(fn=cmd_tour)
    s = sub.add_parser("scenario", help="run one experiment: tcpdive scenario handshake")
    s.add_argument("name")
    s.add_argument("--sysctl", action="append", type=_parse_sysctl, metavar="NAME=VALUE")
    s.add_argument("--pcap", metavar="FILE", help="write every packet to a pcap file")
    s.add_argument("--trace", action="store_true", help="print tracepoint events")
    s.add_argument("--seed", type=int, default=1)
    s.set_defaults(fn=cmd_scenario)
    y = sub.add_parser("sysctl", help="list tcpdive's sysctls like `sysctl -a | grep PATTERN`")
    y.add_argument("pattern", nargs="?")
    y.add_argument("-w", "--write", action="append", metavar="NAME=VALUE",
                   help="validate a setting as `sysctl -w` would")
    y.set_defaults(fn=cmd_sysctl)
    b = sub.add_parser("bench", help="print simulator speed and memory figures next to Linux")
    b.add_argument("--quick", action="store_true", help="smaller runs")
    b.set_defaults(fn=cmd_bench)
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
    except (OSError, ValueError) as e:
        print(f"tcpdive: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
