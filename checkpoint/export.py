"""Export a saved VisualBERT head for deployment: a Paddle Inference model (and with --onnx an ONNX one).

python checkpoint/export.py --model output/vqa-finetune/best --task vqa --dst output/vqa-export [--onnx]

The destination holds model.json + model.pdiparams, config.json, the tokenizer files, export.json (inputs and
outputs) and model.onnx; it is replaced only when the whole export succeeds.
"""

import argparse
import sys

from paddlenlp_ext.deploy import TASKS, export


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a saved model folder (save_pretrained, convert.py)")
    parser.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    parser.add_argument("--dst", required=True, help="the export folder")
    parser.add_argument("--onnx", action="store_true", help="also write model.onnx (paddle2onnx)")
    args = parser.parse_args(argv)
    try:
        dst = export(args.model, args.task, args.dst, onnx=args.onnx)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.model} -> {dst} ({args.task}{', with model.onnx' if args.onnx else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
