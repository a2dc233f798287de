"""`align export`: a run's adapter as a merged model or a portable adapter, in a folder and/or on the Hub. Thin:
parse, call, print."""

from __future__ import annotations

import argparse


def _cmd_export(args) -> int:
    from align.export.build import ExportRequest, run_export

    request = ExportRequest(
        source=args.source,
        output_dir=args.output_dir,
        stage=args.stage,
        adapter_only=args.adapter_only,
        dtype=args.dtype,
        max_shard_size=args.max_shard_size,
        model=args.model,
        push_to_hub=args.push_to_hub,
        private=args.private,
        overwrite=args.overwrite,
    )
    result = run_export(request)
    what = "adapter" if result.artifact == "adapter" else "merged model"
    of = f" of stage {result.stage}" if result.stage else ""
    if result.folder is not None:
        print(f"{what}{of} written to {result.folder}")
    if result.url is not None:
        print(f"{what}{of} uploaded: {result.url}")
    return 0


def add_export(sub) -> None:
    from align.export.merge import EXPORT_DTYPES

    export = sub.add_parser(
        "export",
        help="turn a run into a merged model or a portable adapter, optionally pushed to the Hub",
        description="Export SOURCE (an `align train` output folder: its last stage, or --stage NAME; or a PEFT "
        "adapter folder) as a merged model (safetensors, config, generation config, tokenizer and chat template, "
        "model card) that transformers' AutoModelForCausalLM loads without align or peft, or with --adapter-only "
        "as the adapter with its tokenizer and card, which peft's AutoPeftModelForCausalLM loads on any machine "
        "that has the base model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    export.add_argument("source", metavar="SOURCE", help="a run's output folder, or an adapter folder")
    export.add_argument("--output-dir", metavar="DIR", help="the folder to write (needed unless --push-to-hub)")
    export.add_argument("--stage", metavar="NAME", help="the run's stage to export (default: its last)")
    export.add_argument(
        "--adapter-only", action="store_true", help="export the adapter, tokenizer and card, not a merged model"
    )
    export.add_argument(
        "--dtype", choices=EXPORT_DTYPES, help="the merged model's dtype (default: the base model's own)"
    )
    export.add_argument("--max-shard-size", default="5GB", metavar="SIZE", help="largest weights file, e.g. 2GB")
    export.add_argument(
        "--model", metavar="NAME", help="the base model (short name, folder or Hub id) instead of the one recorded"
    )
    export.add_argument(
        "--push-to-hub", metavar="REPO", help="upload the export to this Hub model repo (created if missing)"
    )
    export.add_argument("--private", action="store_true", help="create the Hub repo private (with --push-to-hub)")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty --output-dir")
    export.set_defaults(func=_cmd_export)
