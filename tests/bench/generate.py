"""Generators of benchmark input: a CSV of invoices (one line each) for a set of customers.

python -m tests.bench.generate invoices.csv --invoices 1000000 --customers 100000
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

DESCRIPTIONS = ["11月分電気料金", "11月分ガス料金", "商品代金", "年会費", "受講料"]
ITEMS = [("基本料金", "10"), ("電力量料金", "10"), ("食料品", "8"), ("手数料", "exempt")]


def customer_code(i: int) -> str:
    return f"C{i:07d}"


def write_invoices_csv(path: Path, *, invoices: int, customers: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("請求番号,外部ID,顧客コード,請求日,支払期限,料金名,品目,数量,単価,税区分\n")
        lines = []
        for i in range(invoices):
            item, category = ITEMS[i % len(ITEMS)]
            lines.append(
                f"B-{i:08d},ext-{i:08d},{customer_code(rng.randrange(customers))},2026-11-01,2026-11-30,"
                f"{DESCRIPTIONS[i % len(DESCRIPTIONS)]},{item},{1 + i % 3},{100 + rng.randrange(20000)},"
                f"{category}\n"
            )
            if len(lines) == 10000:
                out.writelines(lines)
                lines = []
        out.writelines(lines)
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    size = write_invoices_csv(args.path, invoices=args.invoices, customers=args.customers)
    print(f"{args.path}: {args.invoices:,} invoices, {size:,} bytes")


if __name__ == "__main__":
    main()
