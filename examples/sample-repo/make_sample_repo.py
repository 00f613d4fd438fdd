#!/usr/bin/env python3
"""Build Crucible's sample repository: a small Python package with real history.

Usage: make_sample_repo.py DEST

DEST must not exist or be an empty directory. The script creates a git
repository there with an initial commit (the `inventory` package and its pytest
suite), ten pull requests merged with `git merge --no-ff` (each changes source
files and tests, and its merge commit carries the PR title and body), and two
direct commits on main that change no tests. Names, e-mails and dates are
fixed and the user's git configuration is ignored, so every run produces the
same commit ids.

Tests run from the repository root with the system interpreter and pytest:
    python3 -m pytest -q -p no:cacheprovider --junitxml=REPORT
Standard library only; needs `git` on PATH.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

# --------------------------------------------------------------------------
# People and time
# --------------------------------------------------------------------------

ALICE = ("Alice Martin", "alice@shop.example")
BOB = ("Bob Chen", "bob@shop.example")
CAROL = ("Carol Diaz", "carol@shop.example")

START_EPOCH = 1709542800  # 2024-03-04 09:00:00 UTC

# --------------------------------------------------------------------------
# The initial tree
# --------------------------------------------------------------------------

BASE_FILES = {}

BASE_FILES[".gitignore"] = r'''__pycache__/
*.pyc
.pytest_cache/
'''

BASE_FILES["pytest.ini"] = r'''[pytest]
testpaths = tests
'''

BASE_FILES["README.md"] = r'''# inventory

A small library that keeps track of a shop's stock: products, prices,
discounts, order totals and plain-text stock reports.

## Layout

- `inventory/config.py`: defaults (currency symbol, low-stock threshold, tax rate, ...)
- `inventory/utils.py`: text and number helpers shared by the other modules
- `inventory/models.py`: `Product` and `Inventory`
- `inventory/pricing.py`: discounts and order totals
- `inventory/report.py`: the stock report and order summaries
- `inventory/cli.py`: the command line

## Tests

    python3 -m pytest -q
'''

BASE_FILES["inventory/__init__.py"] = r'''"""inventory: a small library for keeping track of a shop's stock."""

from inventory.models import Inventory, Product
from inventory.pricing import apply_discount, calc_total

__version__ = "0.3.0"

__all__ = ["Inventory", "Product", "apply_discount", "calc_total"]
'''

BASE_FILES["inventory/config.py"] = r'''"""Defaults for the inventory library."""

# Symbol put in front of formatted amounts.
CURRENCY_SYMBOL = "$"

# Products at or below this many units are reported as low on stock.
LOW_STOCK_THRESHOLD = 5

# Category given to products created without one.
DEFAULT_CATEGORY = "misc"

# Sales tax added to order totals, as a fraction.
TAX_RATE = 0.08

# Largest discount, in percent, that apply_discount accepts.
MAX_DISCOUNT_PERCENT = 50

# Width of the name column in the stock report.
REPORT_NAME_WIDTH = 24
'''

BASE_FILES["inventory/utils.py"] = r'''"""Small text and number helpers shared by the package."""

import re

from inventory import config


def normalize_sku(sku):
    """Return the canonical form of a SKU: trimmed, upper case, spaces as dashes."""
    if not isinstance(sku, str):
        raise TypeError("sku must be a string, not %s" % type(sku).__name__)
    cleaned = re.sub(r"\s+", "-", sku.strip().upper())
    if not cleaned:
        raise ValueError("sku must not be empty")
    return cleaned


def round_money(amount):
    """Round an amount to whole cents."""
    return round(float(amount), 2)


def format_money(amount, symbol=None):
    """Format an amount as money, e.g. 12.5 -> '$12.50'."""
    if symbol is None:
        symbol = config.CURRENCY_SYMBOL
    value = round_money(amount)
    sign = "-" if value < 0 else ""
    return "%s%s%.2f" % (sign, symbol, abs(value))


def truncate(text, width):
    """Cut text to at most width characters, ending in '...' when it was cut."""
    if len(text) <= width:
        return text
    if width <= 3:
        return text[:width]
    return text[: width - 3] + "..."


def parse_quantity(text):
    """Parse a whole, non-negative number of units such as '12'."""
    value = int(text)
    if value < 0:
        raise ValueError("quantity must not be negative: %r" % text)
    return value
'''

BASE_FILES["inventory/models.py"] = r'''"""Products and the inventory that holds them."""

from dataclasses import dataclass

from inventory import config
from inventory.utils import format_money, normalize_sku, round_money


@dataclass
class Product:
    sku: str
    name: str
    price: float
    quantity: int = 0
    category: str = config.DEFAULT_CATEGORY

    def __post_init__(self):
        self.sku = normalize_sku(self.sku)
        if self.price < 0:
            raise ValueError("price must not be negative")
        if self.quantity < 0:
            raise ValueError("quantity must not be negative")

    @property
    def stock_value(self):
        return self.price * self.quantity

    def __str__(self):
        return "%s %s (%d @ %s)" % (self.sku, self.name, self.quantity, format_money(self.price))


class Inventory:
    """Products by SKU. Iteration is in SKU order."""

    def __init__(self, products=()):
        self._products = {}
        for product in products:
            self.add(product)

    def __len__(self):
        return len(self._products)

    def __iter__(self):
        return iter(sorted(self._products.values(), key=lambda p: p.sku))

    def __contains__(self, sku):
        return normalize_sku(sku) in self._products

    def add(self, product):
        if product.sku in self._products:
            raise KeyError("duplicate sku: %s" % product.sku)
        self._products[product.sku] = product

    def get(self, sku):
        return self._products[normalize_sku(sku)]

    def restock(self, sku, quantity):
        """Add units to stock (a delivery) and return the new quantity."""
        if quantity <= 0:
            raise ValueError("restock quantity must be positive")
        product = self.get(sku)
        product.quantity += quantity
        return product.quantity

    def remove(self, sku, quantity):
        """Take units out of stock (a sale) and return the new quantity."""
        product = self.get(sku)
        product.quantity = max(0, product.quantity - quantity)
        return product.quantity

    def low_stock(self, threshold=None):
        """Products at or below threshold units (config.LOW_STOCK_THRESHOLD by default)."""
        if threshold is None:
            threshold = config.LOW_STOCK_THRESHOLD
        return [p for p in self if p.quantity < threshold]

    def total_value(self):
        return round_money(sum(p.stock_value for p in self))
'''

BASE_FILES["inventory/pricing.py"] = r'''"""Discounts and order totals."""

from inventory import config
from inventory.utils import round_money


def apply_discount(price, percent):
    """Return price reduced by percent (0 to config.MAX_DISCOUNT_PERCENT)."""
    if percent < 0 or percent > config.MAX_DISCOUNT_PERCENT:
        raise ValueError("discount must be between 0 and %d percent" % config.MAX_DISCOUNT_PERCENT)
    return round_money(price * (100 - percent) / 100)


def calc_total(lines, tax_rate=None):
    """Total of an order given as (product, quantity) pairs, tax included."""
    if tax_rate is None:
        tax_rate = config.TAX_RATE
    subtotal = sum(product.price * quantity for product, quantity in lines)
    return round_money(subtotal * (1 + tax_rate))
'''

BASE_FILES["inventory/report.py"] = r'''"""Plain-text reports over an inventory."""

from inventory import config
from inventory.pricing import calc_total
from inventory.utils import format_money, truncate


def stock_lines(inventory):
    """One line per product: SKU, name, units and stock value."""
    width = config.REPORT_NAME_WIDTH
    lines = []
    for product in inventory:
        name = truncate(product.name, width)
        lines.append("%-10s %-*s %5d %12s" % (
            product.sku, width, name, product.quantity, format_money(product.stock_value)))
    return lines


def stock_report(inventory):
    lines = ["Stock report", ""]
    lines.extend(stock_lines(inventory))
    lines.append("")
    lines.append("Total stock value: %s" % format_money(inventory.total_value()))
    low = inventory.low_stock()
    if low:
        lines.append("Low on stock: %s" % ", ".join(p.sku for p in low))
    return "\n".join(lines) + "\n"


def order_summary(lines, tax_rate=None):
    """One line per order line, then the total with tax."""
    out = ["%d x %s" % (quantity, product.name) for product, quantity in lines]
    out.append("Total: %s" % format_money(calc_total(lines, tax_rate)))
    return "\n".join(out)
'''

BASE_FILES["inventory/cli.py"] = r'''"""Command line: python3 -m inventory.cli FILE {report,value,order} ...

FILE is a JSON list of products ("-" reads it from standard input).
"""

import argparse
import json
import sys

from inventory.models import Inventory, Product
from inventory.pricing import calc_total
from inventory.report import stock_report
from inventory.utils import format_money, normalize_sku, parse_quantity


def load(source):
    data = json.load(source)
    return Inventory(Product(**item) for item in data)


def build_parser():
    parser = argparse.ArgumentParser(prog="inventory")
    parser.add_argument("file", help="JSON file with a list of products, - for stdin")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("report", help="print the stock report")
    sub.add_parser("value", help="print the total stock value")
    order = sub.add_parser("order", help="print the total of an order")
    order.add_argument("items", nargs="+", metavar="SKU=QUANTITY")
    return parser


def main(argv=None, out=None, stdin=None):
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.file == "-":
        inventory = load(stdin or sys.stdin)
    else:
        with open(args.file) as fh:
            inventory = load(fh)
    if args.command == "report":
        out.write(stock_report(inventory))
    elif args.command == "value":
        out.write(format_money(inventory.total_value()) + "\n")
    else:
        lines = []
        for item in args.items:
            sku, _, quantity = item.partition("=")
            sku = normalize_sku(sku)
            if sku not in inventory:
                parser.error("unknown sku: %s" % sku)
            lines.append((inventory.get(sku), parse_quantity(quantity)))
        out.write(format_money(calc_total(lines)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

BASE_FILES["tests/conftest.py"] = r'''import os
import sys

# Make the package importable when pytest runs from the repository root
# without an install.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402

from inventory.models import Inventory, Product  # noqa: E402


@pytest.fixture
def shop():
    return Inventory([
        Product("KB-100", "Mechanical keyboard", 89.0, quantity=12, category="peripherals"),
        Product("MS-200", "Wireless mouse", 24.5, quantity=5, category="peripherals"),
        Product("CB-300", "USB-C cable", 7.25, quantity=40, category="cables"),
        Product("MN-400", "27 inch monitor", 279.99, quantity=2, category="displays"),
    ])
'''

BASE_FILES["tests/test_utils.py"] = r'''import pytest

from inventory import utils


def test_normalize_sku_trims_and_uppercases():
    assert utils.normalize_sku("  kb 100 ") == "KB-100"


def test_normalize_sku_rejects_empty():
    with pytest.raises(ValueError):
        utils.normalize_sku("   ")


def test_normalize_sku_rejects_non_string():
    with pytest.raises(TypeError):
        utils.normalize_sku(100)


def test_round_money():
    assert utils.round_money(12.345678) == 12.35
    assert utils.round_money(3) == 3.0


def test_format_money():
    assert utils.format_money(12.5) == "$12.50"
    assert utils.format_money(0) == "$0.00"


def test_format_money_negative():
    assert utils.format_money(-3.5) == "-$3.50"


def test_format_money_symbol():
    assert utils.format_money(4, symbol="EUR ") == "EUR 4.00"


def test_truncate():
    assert utils.truncate("short", 10) == "short"
    assert utils.truncate("a very long product name", 10) == "a very ..."
    assert utils.truncate("abcdef", 3) == "abc"


def test_parse_quantity():
    assert utils.parse_quantity("12") == 12
    with pytest.raises(ValueError):
        utils.parse_quantity("-1")
    with pytest.raises(ValueError):
        utils.parse_quantity("two")
'''

BASE_FILES["tests/test_models.py"] = r'''import pytest

from inventory.models import Inventory, Product


def test_product_normalizes_sku():
    assert Product(" kb 100", "Keyboard", 10.0).sku == "KB-100"


def test_product_default_category():
    assert Product("X-1", "Thing", 1.0).category == "misc"


def test_product_rejects_negative_price():
    with pytest.raises(ValueError):
        Product("X-1", "Thing", -1.0)


def test_product_str():
    assert str(Product("X-1", "Thing", 2.5, quantity=3)) == "X-1 Thing (3 @ $2.50)"


def test_stock_value():
    assert Product("X-1", "Thing", 2.5, quantity=4).stock_value == 10.0


def test_inventory_iterates_in_sku_order(shop):
    assert [p.sku for p in shop] == ["CB-300", "KB-100", "MN-400", "MS-200"]


def test_inventory_lookup_normalizes_sku(shop):
    assert shop.get("kb 100").name == "Mechanical keyboard"
    assert "ms-200" in shop


def test_duplicate_sku_rejected(shop):
    with pytest.raises(KeyError):
        shop.add(Product("kb-100", "Another keyboard", 50.0))


def test_restock(shop):
    assert shop.restock("MS-200", 10) == 15


def test_restock_rejects_non_positive(shop):
    with pytest.raises(ValueError):
        shop.restock("MS-200", 0)


def test_remove(shop):
    assert shop.remove("KB-100", 2) == 10
    assert shop.get("KB-100").quantity == 10


def test_low_stock_explicit_threshold(shop):
    assert [p.sku for p in shop.low_stock(3)] == ["MN-400"]


def test_low_stock_default_threshold():
    inventory = Inventory([
        Product("A-1", "A", 1.0, quantity=1),
        Product("B-1", "B", 1.0, quantity=3),
        Product("C-1", "C", 1.0, quantity=20),
    ])
    assert [p.sku for p in inventory.low_stock()] == ["A-1", "B-1"]


def test_total_value(shop):
    assert shop.total_value() == 2040.48
'''

BASE_FILES["tests/test_pricing.py"] = r'''import pytest

from inventory import pricing
from inventory.models import Product


def test_apply_discount():
    assert pricing.apply_discount(100.0, 15) == 85.0


def test_apply_discount_zero():
    assert pricing.apply_discount(19.99, 0) == 19.99


def test_apply_discount_out_of_range():
    with pytest.raises(ValueError):
        pricing.apply_discount(10.0, 60)
    with pytest.raises(ValueError):
        pricing.apply_discount(10.0, -5)


def test_calc_total_adds_tax():
    lines = [(Product("A-1", "A", 10.0), 2), (Product("B-1", "B", 5.0), 1)]
    assert pricing.calc_total(lines) == 27.0


def test_calc_total_custom_tax_rate():
    lines = [(Product("A-1", "A", 10.0), 3)]
    assert pricing.calc_total(lines, tax_rate=0) == 30.0


def test_calc_total_empty_order():
    assert pricing.calc_total([]) == 0.0
'''

BASE_FILES["tests/test_report.py"] = r'''from inventory import report
from inventory.models import Inventory, Product


def test_stock_report_rows(shop):
    lines = report.stock_report(shop).splitlines()
    assert lines[0] == "Stock report"
    assert lines[2].startswith("CB-300")
    assert "USB-C cable" in lines[2]
    assert [line[:6] for line in lines[2:6]] == ["CB-300", "KB-100", "MN-400", "MS-200"]


def test_stock_report_total(shop):
    assert "Total stock value: $2040.48\n" in report.stock_report(shop)


def test_stock_report_low_stock(shop):
    assert "Low on stock: MN-400" in report.stock_report(shop)


def test_long_names_are_truncated():
    inventory = Inventory([Product("X-1", "An extremely long product name for a cable", 1.0)])
    row = report.stock_lines(inventory)[0]
    assert "An extremely long pro..." in row
    assert "cable" not in row


def test_order_summary(shop):
    lines = [(shop.get("KB-100"), 1), (shop.get("CB-300"), 2)]
    assert report.order_summary(lines).splitlines() == [
        "1 x Mechanical keyboard",
        "2 x USB-C cable",
        "Total: $111.78",
    ]
'''

BASE_FILES["tests/test_cli.py"] = r'''import io
import json

import pytest

from inventory import cli

PRODUCTS = [
    {"sku": "KB-100", "name": "Mechanical keyboard", "price": 89.0, "quantity": 12},
    {"sku": "CB-300", "name": "USB-C cable", "price": 7.25, "quantity": 40},
]


def run(*argv):
    out = io.StringIO()
    code = cli.main(["-"] + list(argv), out=out, stdin=io.StringIO(json.dumps(PRODUCTS)))
    return code, out.getvalue()


def test_value():
    assert run("value") == (0, "$1358.00\n")


def test_report():
    code, text = run("report")
    assert code == 0
    assert text.startswith("Stock report\n")
    assert "KB-100" in text


def test_order():
    assert run("order", "kb-100=1", "CB-300=2") == (0, "$111.78\n")


def test_order_unknown_sku():
    with pytest.raises(SystemExit) as excinfo:
        run("order", "ZZ-1=1")
    assert excinfo.value.code == 2
'''

# --------------------------------------------------------------------------
# Changes. An edit is one of
#   ("replace", path, old, new)      old must occur exactly once
#   ("append", path, text)
#   ("rename", [paths], old, new)    whole-word rename, at least once per file
#   ("substitute", path, old, new)   every occurrence (at least one)
#   ("write", path, content)
# --------------------------------------------------------------------------

PULL_REQUESTS = {}


def pull_request(number, branch, kind, author, merger, title, body, commits):
    PULL_REQUESTS[number] = {
        "number": number, "branch": branch, "kind": kind, "author": author,
        "merger": merger, "title": title, "body": body, "commits": commits,
    }


pull_request(
    1, "fix-low-stock-boundary", "bug fix", BOB, ALICE,
    "Low-stock list misses products exactly at the threshold",
    "`Inventory.low_stock(threshold)` is documented (and `LOW_STOCK_THRESHOLD` in "
    "`inventory/config.py` is commented) as returning the products *at or below* the "
    "threshold, but it compares with a strict `<`, so a product with exactly `threshold` "
    "units is left out. With the current default of 5, our wireless mouse with 5 units left "
    "never shows up in the low-stock list or on the \"Low on stock:\" line of "
    "`report.stock_report()`.\n\n"
    "Expected: `low_stock(threshold)` returns every product whose quantity is less than or "
    "equal to `threshold`, in SKU order (e.g. with quantities 2 and 5, `low_stock(5)` returns "
    "both and `low_stock(2)` returns only the first), and the stock report lists all of them.",
    [
        ("Include products at the threshold in low_stock", [
            ("replace", "inventory/models.py",
             "return [p for p in self if p.quantity < threshold]",
             "return [p for p in self if p.quantity <= threshold]"),
        ]),
        ("Test the low-stock boundary", [
            ("append", "tests/test_models.py", r'''

def test_low_stock_includes_products_at_threshold(shop):
    assert [p.sku for p in shop.low_stock(5)] == ["MN-400", "MS-200"]
    assert [p.sku for p in shop.low_stock(2)] == ["MN-400"]
'''),
            ("replace", "tests/test_report.py",
             '''    assert "Low on stock: MN-400" in report.stock_report(shop)''',
             '''    assert "Low on stock: MN-400, MS-200\\n" in report.stock_report(shop)'''),
        ]),
    ])

pull_request(
    2, "inventory-search", "feature", CAROL, BOB,
    "Add Inventory.search to find products by name or SKU",
    "The shop front is getting a search box and needs a lookup that tolerates partial input.\n\n"
    "Add a method `Inventory.search(query)` in `inventory/models.py` that returns the list of "
    "products whose name or SKU contains `query`, case-insensitively, after stripping leading "
    "and trailing whitespace from the query. Results come in SKU order (the order in which the "
    "inventory iterates). A query that is empty or only whitespace returns an empty list, not "
    "every product. Example with our demo stock: `search(\"KEYboard\")` finds KB-100, "
    "`search(\"  ms-2 \")` finds MS-200, `search(\"c\")` finds CB-300, KB-100 and MN-400.",
    [
        ("Add Inventory.search", [
            ("replace", "inventory/models.py",
             '''    def restock(self, sku, quantity):''',
             '''    def search(self, query):
        """Products whose name or SKU contains query (case-insensitive), in SKU order."""
        needle = query.strip().lower()
        if not needle:
            return []
        return [p for p in self if needle in p.name.lower() or needle in p.sku.lower()]

    def restock(self, sku, quantity):'''),
            ("append", "tests/test_models.py", r'''

def test_search_by_name_is_case_insensitive(shop):
    assert [p.sku for p in shop.search("KEYboard")] == ["KB-100"]


def test_search_by_sku_strips_whitespace(shop):
    assert [p.sku for p in shop.search("  ms-2 ")] == ["MS-200"]


def test_search_results_in_sku_order(shop):
    assert [p.sku for p in shop.search("c")] == ["CB-300", "KB-100", "MN-400"]


def test_search_empty_query_finds_nothing(shop):
    assert shop.search("   ") == []
'''),
        ]),
    ])

pull_request(
    3, "money-thousands-separator", "shared utility change", ALICE, CAROL,
    "format_money: group thousands with commas",
    "Large amounts are hard to read in the stock report: `format_money(2040.48)` prints "
    "`$2040.48`.\n\n"
    "Change `format_money` in `inventory/utils.py` to group the integer part in thousands with "
    "commas: `format_money(2040.48)` -> `$2,040.48`, `format_money(1234567)` -> "
    "`$1,234,567.00`, `format_money(-1500)` -> `-$1,500.00`. Amounts below 1000 keep their "
    "current form (`$999.99`), and the optional `symbol` argument works as before. Everything "
    "that prints money goes through this helper (the stock report, order summaries, the CLI "
    "`value` and `order` commands, `str(Product)`), so they all pick up the new format "
    "without further changes.",
    [
        ("Group thousands in format_money", [
            ("replace", "inventory/utils.py",
             '''    """Format an amount as money, e.g. 12.5 -> '$12.50'."""''',
             '''    """Format an amount as money, e.g. 1234.5 -> '$1,234.50'."""'''),
            ("replace", "inventory/utils.py",
             '''    return "%s%s%.2f" % (sign, symbol, abs(value))''',
             '''    return "%s%s%s" % (sign, symbol, "{:,.2f}".format(abs(value)))'''),
            ("append", "tests/test_utils.py", r'''

def test_format_money_groups_thousands():
    assert utils.format_money(2040.48) == "$2,040.48"
    assert utils.format_money(1234567) == "$1,234,567.00"
    assert utils.format_money(-1500) == "-$1,500.00"
    assert utils.format_money(999.99) == "$999.99"
'''),
            ("replace", "tests/test_report.py", "$2040.48", "$2,040.48"),
            ("replace", "tests/test_cli.py", "$1358.00", "$1,358.00"),
        ]),
    ])

pull_request(
    4, "raise-low-stock-threshold", "config change", BOB, ALICE,
    "Raise the low-stock threshold to 10 units",
    "Our suppliers now need about a week to deliver, and 5 units left is not enough warning "
    "to reorder in time.\n\n"
    "Change the default `LOW_STOCK_THRESHOLD` from 5 to 10 in `inventory/config.py`. "
    "`Inventory.low_stock()` called without a threshold, and therefore the \"Low on stock:\" "
    "line of the stock report, then flag every product with 10 units or fewer. Passing an "
    "explicit threshold keeps working as before.",
    [
        ("Raise LOW_STOCK_THRESHOLD to 10", [
            ("replace", "inventory/config.py",
             "LOW_STOCK_THRESHOLD = 5", "LOW_STOCK_THRESHOLD = 10"),
            ("append", "tests/test_models.py", r'''

def test_low_stock_default_threshold_is_ten():
    inventory = Inventory([
        Product("A-1", "A", 1.0, quantity=10),
        Product("B-1", "B", 1.0, quantity=11),
        Product("C-1", "C", 1.0, quantity=6),
    ])
    assert [p.sku for p in inventory.low_stock()] == ["A-1", "C-1"]
'''),
        ]),
    ])

pull_request(
    5, "rename-calc-total", "rename refactor", CAROL, ALICE,
    "Rename calc_total to compute_order_total",
    "`calc_total` is easy to confuse with `Inventory.total_value()`: one is the total of an "
    "order (tax included), the other the value of the stock.\n\n"
    "Rename `calc_total` to `compute_order_total` everywhere: the definition in "
    "`inventory/pricing.py`, the package export in `inventory/__init__.py` (`__all__` "
    "included), and the callers in `inventory/report.py` and `inventory/cli.py`. This is a "
    "pure rename: the signature `(lines, tax_rate=None)` and the behaviour stay the same, and "
    "no alias with the old name is kept.",
    [
        ("Rename calc_total to compute_order_total", [
            ("rename", ["inventory/__init__.py", "inventory/pricing.py",
                        "inventory/report.py", "inventory/cli.py"],
             "calc_total", "compute_order_total"),
        ]),
        ("Update tests for compute_order_total", [
            ("substitute", "tests/test_pricing.py", "calc_total", "compute_order_total"),
        ]),
    ])

pull_request(
    6, "csv-export", "feature", BOB, CAROL,
    "Export the stock list as CSV",
    "Accounting wants the stock list in a spreadsheet.\n\n"
    "Add `to_csv(inventory)` to `inventory/report.py`. It returns CSV text written with the "
    "`csv` module (line terminator `\\n`): the header row "
    "`sku,name,category,quantity,unit_price,stock_value`, then one row per product in SKU "
    "order. `unit_price` and `stock_value` are plain numbers with two decimals and no currency "
    "symbol or thousands separator (e.g. `1068.00`), so spreadsheets read them as numbers; "
    "`stock_value` is rounded to cents. Names containing commas or quotes are quoted the "
    "usual CSV way. Also add a `csv` subcommand to the command line "
    "(`python3 -m inventory.cli FILE csv`) that prints that text.",
    [
        ("Add report.to_csv", [
            ("replace", "inventory/report.py",
             '''from inventory import config
''',
             '''import csv
import io

from inventory import config
'''),
            ("replace", "inventory/report.py",
             "from inventory.utils import format_money, truncate",
             "from inventory.utils import format_money, round_money, truncate"),
            ("append", "inventory/report.py", r'''

CSV_FIELDS = ["sku", "name", "category", "quantity", "unit_price", "stock_value"]


def to_csv(inventory):
    """The stock list as CSV text, one row per product in SKU order."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for product in inventory:
        writer.writerow([
            product.sku, product.name, product.category, product.quantity,
            "%.2f" % product.price, "%.2f" % round_money(product.stock_value),
        ])
    return buf.getvalue()
'''),
            ("append", "tests/test_report.py", r'''

def test_to_csv_header_and_rows(shop):
    lines = report.to_csv(shop).splitlines()
    assert lines[0] == "sku,name,category,quantity,unit_price,stock_value"
    assert lines[1] == "CB-300,USB-C cable,cables,40,7.25,290.00"
    assert lines[2] == "KB-100,Mechanical keyboard,peripherals,12,89.00,1068.00"
    assert len(lines) == 5


def test_to_csv_quotes_names():
    inventory = Inventory([Product("X-1", 'Cable, 2m "braided"', 3.0, quantity=1, category="cables")])
    assert report.to_csv(inventory).splitlines()[1] == 'X-1,"Cable, 2m ""braided""",cables,1,3.00,3.00'
'''),
        ]),
        ("Add a csv command to the CLI", [
            ("replace", "inventory/cli.py",
             "from inventory.report import stock_report",
             "from inventory.report import stock_report, to_csv"),
            ("replace", "inventory/cli.py",
             '''    sub.add_parser("value", help="print the total stock value")
''',
             '''    sub.add_parser("value", help="print the total stock value")
    sub.add_parser("csv", help="print the stock list as CSV")
'''),
            ("replace", "inventory/cli.py",
             '''        out.write(format_money(inventory.total_value()) + "\\n")
    else:''',
             '''        out.write(format_money(inventory.total_value()) + "\\n")
    elif args.command == "csv":
        out.write(to_csv(inventory))
    else:'''),
            ("append", "tests/test_cli.py", r'''

def test_csv_command():
    code, text = run("csv")
    lines = text.splitlines()
    assert code == 0
    assert lines[0] == "sku,name,category,quantity,unit_price,stock_value"
    assert lines[1].startswith("CB-300,USB-C cable,")
    assert lines[1].endswith(",40,7.25,290.00")
    assert len(lines) == 3
'''),
        ]),
    ])

pull_request(
    7, "remove-validation", "validation / error handling", CAROL, BOB,
    "Refuse to sell more units than are in stock",
    "`Inventory.remove(sku, quantity)` silently clamps the stock at 0 when asked to remove "
    "more units than there are, so an oversold order goes unnoticed; it also accepts zero and "
    "negative quantities (removing -2 units adds stock).\n\n"
    "Add an exception class `InsufficientStockError`, a subclass of `ValueError`, in "
    "`inventory/models.py`, and make `remove` raise it when `quantity` is greater than the "
    "product's current quantity. The stock must be left unchanged in that case, and the "
    "message must name the SKU, e.g. `not enough stock for MS-200: have 5, asked for 6`. Also "
    "make `remove` raise `ValueError` when `quantity` is zero or negative, like `restock` "
    "already does. Removing exactly the available quantity is fine and leaves 0.",
    [
        ("Validate quantities in Inventory.remove", [
            ("replace", "inventory/models.py",
             '''

@dataclass
class Product:''',
             '''

class InsufficientStockError(ValueError):
    """Raised when more units are taken out of stock than there are."""


@dataclass
class Product:'''),
            ("replace", "inventory/models.py",
             '''        product = self.get(sku)
        product.quantity = max(0, product.quantity - quantity)
        return product.quantity''',
             '''        if quantity <= 0:
            raise ValueError("remove quantity must be positive")
        product = self.get(sku)
        if quantity > product.quantity:
            raise InsufficientStockError("not enough stock for %s: have %d, asked for %d" % (
                product.sku, product.quantity, quantity))
        product.quantity -= quantity
        return product.quantity'''),
        ]),
        ("Test Inventory.remove validation", [
            ("append", "tests/test_models.py", r'''

def test_remove_more_than_stock_raises(shop):
    from inventory.models import InsufficientStockError

    with pytest.raises(InsufficientStockError) as excinfo:
        shop.remove("MS-200", 6)
    assert "MS-200" in str(excinfo.value)
    assert shop.get("MS-200").quantity == 5
    assert shop.remove("MS-200", 5) == 0


def test_remove_rejects_non_positive(shop):
    with pytest.raises(ValueError):
        shop.remove("MS-200", 0)
    with pytest.raises(ValueError):
        shop.remove("MS-200", -2)
    assert shop.get("MS-200").quantity == 5
'''),
        ]),
    ])

pull_request(
    8, "rename-normalize-sku", "rename refactor", ALICE, BOB,
    "Rename normalize_sku to canonical_sku",
    "`normalize_sku` reads as if it changed something in place; what it does is return the "
    "canonical form of a SKU.\n\n"
    "Rename `normalize_sku` to `canonical_sku`: the definition in `inventory/utils.py` and "
    "every caller (`inventory/models.py`, `inventory/cli.py`). Behaviour is unchanged and no "
    "alias with the old name is kept.",
    [
        ("Rename normalize_sku to canonical_sku", [
            ("rename", ["inventory/utils.py", "inventory/models.py", "inventory/cli.py"],
             "normalize_sku", "canonical_sku"),
            ("substitute", "tests/test_utils.py", "normalize_sku", "canonical_sku"),
        ]),
    ])

pull_request(
    9, "default-category-general", "config change", CAROL, ALICE,
    "Use 'general' as the default product category",
    "Products created without a category land in \"misc\", which the shop front shows as a "
    "separate \"Misc\" tab that nobody clicks.\n\n"
    "Change the default `DEFAULT_CATEGORY` from \"misc\" to \"general\" in "
    "`inventory/config.py`, so that `Product(...)` without a `category` gets \"general\". "
    "Products that set a category explicitly are not affected.",
    [
        ("Default product category: general", [
            ("replace", "inventory/config.py",
             'DEFAULT_CATEGORY = "misc"', 'DEFAULT_CATEGORY = "general"'),
            ("replace", "tests/test_models.py",
             '''category == "misc"''', '''category == "general"'''),
        ]),
    ])

pull_request(
    10, "round-money-half-up", "bug fix", BOB, CAROL,
    "round_money rounds some half-cent amounts down",
    "`round_money` uses the built-in `round()` on floats, so amounts that end in exactly half "
    "a cent are sometimes rounded down because of binary floating point: "
    "`round_money(2.675)` returns 2.67, `round_money(1.005)` returns 1.0, and "
    "`apply_discount(5.35, 50)` returns 2.67 where a customer expects 2.68.\n\n"
    "Make `round_money` in `inventory/utils.py` round half away from zero to whole cents on "
    "the decimal value of the amount (for example with `decimal.Decimal(str(amount))` and "
    "`ROUND_HALF_UP`), still returning a float: `round_money(2.675) == 2.68`, "
    "`round_money(1.005) == 1.01`, `round_money(0.125) == 0.13`, "
    "`round_money(-0.125) == -0.13`, `round_money(10) == 10.0`. `format_money` and "
    "`apply_discount` use it, so `format_money(2.675)` becomes `$2.68` and "
    "`apply_discount(5.35, 50)` becomes 2.68.",
    [
        ("Test half-cent rounding", [
            ("append", "tests/test_utils.py", r'''

def test_round_money_rounds_half_cents_up():
    assert utils.round_money(2.675) == 2.68
    assert utils.round_money(1.005) == 1.01
    assert utils.round_money(0.125) == 0.13
    assert utils.round_money(-0.125) == -0.13
    assert utils.round_money(10) == 10.0


def test_format_money_half_cent():
    assert utils.format_money(2.675) == "$2.68"
'''),
            ("append", "tests/test_pricing.py", r'''

def test_apply_discount_rounds_half_cents_up():
    assert pricing.apply_discount(5.35, 50) == 2.68
'''),
        ]),
        ("Round money half up with Decimal", [
            ("replace", "inventory/utils.py",
             '''import re
''',
             '''import re
from decimal import ROUND_HALF_UP, Decimal
'''),
            ("replace", "inventory/utils.py",
             '''    """Round an amount to whole cents."""
    return round(float(amount), 2)''',
             '''    """Round an amount to whole cents, halves away from zero (2.675 -> 2.68)."""
    cents = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return float(cents)'''),
        ]),
    ])

DIRECT_COMMITS = {
    "docs-cli": (ALICE, "Document the command line in the README", [
        ("append", "README.md", r'''
## Command line

    python3 -m inventory.cli stock.json report
    python3 -m inventory.cli stock.json value
    python3 -m inventory.cli stock.json order KB-100=1 CB-300=2

`stock.json` holds a list of products such as
`{"sku": "KB-100", "name": "Mechanical keyboard", "price": 89.0, "quantity": 12}`;
use `-` to read it from standard input.
'''),
    ]),
    "release-0.4.0": (ALICE, "Release 0.4.0", [
        ("replace", "inventory/__init__.py",
         '__version__ = "0.3.0"', '__version__ = "0.4.0"'),
    ]),
}

# The first-parent history of main, oldest first. PR #6 is opened before #7
# but merged after it, as happens on real teams.
TIMELINE = [
    ("pr", 1), ("pr", 2), ("pr", 3), ("pr", 4), ("pr", 5),
    ("direct", "docs-cli"),
    ("open", 6), ("commit", 6, 0),
    ("pr", 7),
    ("commit", 6, 1), ("merge", 6),
    ("pr", 8),
    ("direct", "release-0.4.0"),
    ("pr", 9), ("pr", 10),
]


# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------

class BuildError(Exception):
    pass


def merge_message(pr):
    return "Merge pull request #%d from team/%s\n\n%s\n\n%s\n" % (
        pr["number"], pr["branch"], pr["title"], pr["body"])


class Builder:
    def __init__(self, dest, home):
        self.dest = dest
        self.clock = START_EPOCH
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self.env.update({
            "HOME": home,
            "XDG_CONFIG_HOME": home,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "TZ": "UTC",
        })

    def git(self, *args, who=None):
        env = dict(self.env)
        if who is not None:
            date = "%d +0000" % self.clock
            env.update({
                "GIT_AUTHOR_NAME": who[0], "GIT_AUTHOR_EMAIL": who[1], "GIT_AUTHOR_DATE": date,
                "GIT_COMMITTER_NAME": who[0], "GIT_COMMITTER_EMAIL": who[1],
                "GIT_COMMITTER_DATE": date,
            })
        cmd = ["git",
               "-c", "user.name=Crucible Sample", "-c", "user.email=sample@crucible.invalid",
               "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false",
               "-c", "tag.gpgsign=false", "-c", "core.autocrlf=false",
               "-c", "core.hooksPath=" + os.devnull, "-c", "merge.log=false",
               "-c", "advice.detachedHead=false"] + list(args)
        try:
            proc = subprocess.run(cmd, cwd=self.dest, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, universal_newlines=True)
        except FileNotFoundError:
            raise BuildError("git was not found on PATH")
        if proc.returncode != 0:
            raise BuildError("git %s failed (exit %d): %s" % (
                " ".join(args[:2]), proc.returncode, (proc.stderr or proc.stdout).strip()))
        return proc.stdout

    def tick(self, seconds):
        self.clock += seconds

    # -- working tree ------------------------------------------------------

    def path(self, rel):
        return os.path.join(self.dest, *rel.split("/"))

    def read(self, rel):
        with open(self.path(rel), encoding="utf-8", newline="") as fh:
            return fh.read()

    def write(self, rel, text):
        full = self.path(rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)

    def apply(self, edit):
        op = edit[0]
        if op == "write":
            self.write(edit[1], edit[2])
        elif op == "append":
            self.write(edit[1], self.read(edit[1]) + edit[2])
        elif op == "replace":
            text = self.read(edit[1])
            if text.count(edit[2]) != 1:
                raise BuildError("internal: %r occurs %d times in %s" % (
                    edit[2], text.count(edit[2]), edit[1]))
            self.write(edit[1], text.replace(edit[2], edit[3]))
        elif op == "substitute":
            text = self.read(edit[1])
            if edit[2] not in text:
                raise BuildError("internal: %r not in %s" % (edit[2], edit[1]))
            self.write(edit[1], text.replace(edit[2], edit[3]))
        elif op == "rename":
            pattern = re.compile(r"\b%s\b" % re.escape(edit[2]))
            for rel in edit[1]:
                text, count = pattern.subn(edit[3], self.read(rel))
                if count == 0:
                    raise BuildError("internal: %r not in %s" % (edit[2], rel))
                self.write(rel, text)
        else:
            raise BuildError("internal: unknown edit %r" % (op,))
        return [edit[1]] if isinstance(edit[1], str) else list(edit[1])

    def commit(self, who, message, edits):
        paths = []
        for edit in edits:
            paths.extend(self.apply(edit))
        self.git("add", "--", *sorted(set(paths)))
        self.git("commit", "-q", "--no-verify", "-m", message, who=who)

    # -- history -----------------------------------------------------------

    def initial(self):
        self.git("init", "-q", ".")
        for rel in sorted(BASE_FILES):
            self.write(rel, BASE_FILES[rel])
        self.git("add", "-A")
        self.git("commit", "-q", "--no-verify", "-m",
                 "Initial inventory package with tests", who=ALICE)

    def open(self, number):
        self.tick(20 * 3600)
        self.git("checkout", "-q", "main")
        self.git("checkout", "-q", "-b", PULL_REQUESTS[number]["branch"])

    def commit_pr(self, number, index):
        pr = PULL_REQUESTS[number]
        self.tick(3 * 3600 + 600 * index)
        self.git("checkout", "-q", pr["branch"])
        message, edits = pr["commits"][index]
        self.commit(pr["author"], message, edits)

    def merge(self, number):
        pr = PULL_REQUESTS[number]
        self.tick(2 * 3600)
        self.git("checkout", "-q", "main")
        self.git("merge", "-q", "--no-ff", "--no-edit", "-m", merge_message(pr), pr["branch"],
                 who=pr["merger"])
        self.git("branch", "-q", "-d", pr["branch"])

    def direct(self, key):
        who, message, edits = DIRECT_COMMITS[key]
        self.tick(5 * 3600)
        self.git("checkout", "-q", "main")
        self.commit(who, message, edits)

    def build(self):
        self.initial()
        for step in TIMELINE:
            if step[0] == "pr":
                self.open(step[1])
                for index in range(len(PULL_REQUESTS[step[1]]["commits"])):
                    self.commit_pr(step[1], index)
                self.merge(step[1])
            elif step[0] == "open":
                self.open(step[1])
            elif step[0] == "commit":
                self.commit_pr(step[1], step[2])
            elif step[0] == "merge":
                self.merge(step[1])
            elif step[0] == "direct":
                self.direct(step[1])
        self.git("checkout", "-q", "main")
        return self.git("rev-parse", "HEAD").strip()


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: make_sample_repo.py DEST\n"
                         "Builds Crucible's sample git repository in DEST "
                         "(which must not exist or be empty).\n")
        return 2
    dest = os.path.abspath(argv[1])
    if os.path.exists(dest):
        if not os.path.isdir(dest):
            sys.stderr.write("make_sample_repo: %s exists and is not a directory\n" % dest)
            return 2
        if os.listdir(dest):
            sys.stderr.write("make_sample_repo: %s exists and is not empty; "
                             "choose a new or empty directory\n" % dest)
            return 2
    try:
        os.makedirs(dest, exist_ok=True)
    except OSError as exc:
        sys.stderr.write("make_sample_repo: cannot create %s: %s\n" % (dest, exc))
        return 2
    home = tempfile.mkdtemp(prefix="crucible-sample-home-")
    try:
        head = Builder(dest, home).build()
    except BuildError as exc:
        sys.stderr.write("make_sample_repo: %s\n" % exc)
        return 1
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print("built sample repository in %s: %d merged pull requests, HEAD %s" % (
        dest, len(PULL_REQUESTS), head))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
