"""Score a VQA v2 result file with the official metric and print the accuracies as one JSON object.

python VQA2/evaluate.py --questions Q.json --annotations A.json --result R.json
"""

import argparse
import json
import sys

from paddlenlp_ext.tasks.vqa.evaluation import evaluate_files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--questions", required=True, help="official questions json, e.g. v2_OpenEnded_mscoco_val2014_questions.json"
    )
    parser.add_argument(
        "--annotations", required=True, help="official annotations json, e.g. v2_mscoco_val2014_annotations.json"
    )
    parser.add_argument("--result", required=True, help='result json: [{"question_id": int, "answer": str}, ...]')
    args = parser.parse_args(argv)
    try:
        scores = evaluate_files(args.questions, args.annotations, args.result)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
