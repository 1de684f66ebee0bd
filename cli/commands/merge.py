"""`merge CONFIG.yml --output OUT`: merge models as a mergekit YAML configuration says.

The inputs are read tensor by tensor and the output is written as it is merged (see
`engine.merge.streaming`); the output is a .safetensors file, a sharded set, or a folder
that keeps the base's other files (config, tokenizer), written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.errors import WeightsmithError
from engine.merge.spec import spec_to_dict
from engine.merge.streaming import streamed_merge
from engine.merge.yaml_config import ConfigError, read_config
from engine.seeds import draw_seed
from engine.session import Session

from ..documents import progress_bar
from .convert import report_saved

EXIT_ERROR = 2


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "merge", help="merge models from a mergekit YAML configuration (linear, "
        "task_arithmetic, ties, dare_linear, dare_ties, slerp, passthrough)")
    parser.add_argument("config", metavar="CONFIG.yml", help="mergekit merge configuration")
    parser.add_argument("--output", "-o", required=True, metavar="OUT",
                        help="x.safetensors, x.safetensors.index.json (sharded), or a folder "
                        "(keeps the base's config and tokenizer files)")
    parser.add_argument("--max-shard-size", metavar="SIZE",
                        help="shard the output at this size (e.g. 5GB, 500MB)")
    parser.add_argument("--random-seed", type=int, metavar="N",
                        help="seed of dare_linear / dare_ties (default: drawn and printed)")
    parser.add_argument("--skip-mismatched", action="store_true",
                        help="leave out tensors missing from an input or of another shape or "
                        "dtype (reported) instead of stopping")
    parser.add_argument("--report", metavar="FILE.json",
                        help="write the relative change of every merged tensor against each "
                        "input")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        config = read_config(args.config)
    except ConfigError as error:
        if args.debug:
            raise
        for line in error.lines():
            sys.stderr.write(f"error: {line}\n")
        return EXIT_ERROR
    for note in config.notes:
        sys.stderr.write(f"note: {note}\n")
    spec = config.spec
    spec.skip_mismatched = spec.skip_mismatched or args.skip_mismatched
    if spec.random:
        if args.random_seed is not None and not 0 <= args.random_seed < 2**63:
            raise WeightsmithError("--random-seed: must be in [0, 2**63)")
        spec.seed = args.random_seed if args.random_seed is not None else draw_seed()
    merged = streamed_merge(spec, report=args.report is not None)
    options: dict = {"parallel_shards": 1, "metadata": {
        "weightsmith.merge": json.dumps(spec_to_dict(spec), sort_keys=True)}}
    if args.max_shard_size is not None:
        size = args.max_shard_size
        options["max_shard_size"] = int(size) if size.isdigit() else size
    session = Session(document=merged.document)
    with progress_bar(args) as bar:
        result = session.save(args.output, progress=bar, **options)
    report_saved(result)
    plan = merged.plan
    print(f"merged {len(plan.names)} tensors with {spec.method}"
          + (f", copied {len(merged.copied)} that are not floating-point" if merged.copied
             else "") + (f", skipped {len(plan.skipped)}" if plan.skipped else ""))
    for name, why in plan.skipped:
        sys.stderr.write(f"note: skipped {name}: {why}\n")
    if spec.random:
        print(f"seed {spec.seed} (--random-seed {spec.seed} replays this merge)")
    if args.report is not None:
        from engine.io.atomic import atomic_write_bytes

        text = json.dumps({"method": spec.method, "inputs": spec.paths, "seed": spec.seed,
                           **merged.report()}, indent=1)
        atomic_write_bytes(args.report, (text + "\n").encode("utf-8"))
    return 0
