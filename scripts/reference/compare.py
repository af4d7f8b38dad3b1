#!/usr/bin/env python3
"""How well an embedding model separates the FAQ questions of the tuning evals, without any
threshold: for each eval question the best cosine per entry (over its variants and its
answer), then the share of covered questions whose entry ranks first, the share whose entry
ranks first and scores above every uncovered question, and the AUC of covered (right entry) against uncovered
(best entry) scores. The README's model-choice table comes from it (tuning parts only):

    /tmp/ref/bin/pip install pyyaml   # besides embeddings.py's packages
    /tmp/ref/bin/python scripts/reference/compare.py tuning /tmp/minilm /tmp/mpnet/all-mpnet-base-v2

NumPy is slow here (minutes per model); parlor's own forward pass gives the same cosines.
"""
import os
import sys

import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(__file__))
from embeddings import Encoder  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def main(part, folders):
    for folder in folders:
        model = Encoder(folder)
        for biz in ["acme-support", "crumb-bakery", "nimbus-hosting"]:
            evals = yaml.safe_load(open(f"{ROOT}/evals/{biz}.{part}.yaml"))
            entries = yaml.safe_load(open(f"{ROOT}/personas/{biz}.yaml"))["faq"]["entries"]
            ids = [e["id"] for e in entries]
            vectors = [np.array([model.embed(q) for q in e["questions"]] + [model.embed(e["answer"])])
                       for e in entries]
            covered, ahead, uncovered, first = [], [], [], 0
            for q in evals["questions"]:
                v = model.embed(q["q"])
                scores = np.array([(m @ v).max() for m in vectors])
                if "faq" in q:
                    i = ids.index(q["faq"])
                    first += scores.argmax() == i
                    covered.append(scores[i])
                    ahead.append(scores[i] > np.delete(scores, i).max())
                elif q.get("unsure"):
                    uncovered.append(scores.max())
            covered, uncovered = np.array(covered), np.array(uncovered)
            above = ((covered > uncovered.max()) & np.array(ahead)).mean()
            auc = np.mean([[c > u for u in uncovered] for c in covered])
            print(f"{biz:15s} {os.path.basename(folder.rstrip('/')):20s} ranked first "
                  f"{first / len(covered):.3f}  above every uncovered {above:.3f}  AUC {auc:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
