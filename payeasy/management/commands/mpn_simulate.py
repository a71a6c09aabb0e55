"""``manage.py mpn_simulate SCENARIO``: play the MPN centre and the banks against a running commserver.

Scenarios (each prints what it sent, the answers by response code and round-trip percentiles):

- ``open`` / ``preclose`` / ``close``: 0800, 0820 kind 1, 0820 kind 2.
- ``pay``: an inquiry (1100), then the payment (1200) of the amount the inquiry answered, for bills
  chosen by ``--invoice NUMBER`` (repeatable) or the first ``--count`` published bills.
- ``load``: payments (and ``--inquiries`` share of inquiries) at ``--rate`` per second for ``--duration``
  seconds over ``--connections`` pipelined connections; ``--watch-paid`` also measures frame sent →
  invoice paid through the live events (needs REDIS_URL).
- ``resend``: 1700 for payments already stored (answered 0000, nothing changes) and for payments the
  server never got (recorded once).
- ``storm``: one payment frame ``--copies`` times at once over ``--connections`` connections.
- ``reverse``: pays ``--count`` bills at a teller (channel 01), then reverses them (1300); also one
  reversal of an unknown payment (B006) and one from an ATM (A301).
- ``counters``: 1600 with the centre's own figures; prints the server's beside them.
- ``teller-files``: writes teller batch files (spec §6) for ``--count`` published bills per biller into
  ``--out`` (default: the drop folder's ``incoming``).
- ``day``: all of the above in the order of an online day, with what reconciliation must find: a
  second payment of a paid bill (二重支払), a reversal, counters where the centre counts one payment more
  than it sent, a teller payment reported on the line and again in the bank's teller file, and a
  payment to a cancelled bill.

The line is opened first (0800) when it is closed, except by ``close`` and ``preclose``. With a CA
(``--tls-ca``, default MPN_SIMULATOR_TLS_CA) the simulator speaks TLS, presenting ``--tls-cert``/
``--tls-key`` (default MPN_SIMULATOR_TLS_CERT/KEY) as its client certificate.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from payeasy import codec, simulator
from payeasy.models import LineState
from payeasy.simulator import Frames, Line, Stats, Target

SCENARIOS = (
    "open",
    "pay",
    "load",
    "resend",
    "storm",
    "reverse",
    "counters",
    "preclose",
    "close",
    "teller-files",
    "day",
)


class Command(BaseCommand):
    help = "Play the MPN centre and the banks against a running commserver (see the module docstring)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("scenario", choices=SCENARIOS)
        parser.add_argument("--host", default=settings.COMMSERVER_HOST)
        parser.add_argument("--port", type=int, default=settings.COMMSERVER_PORT)
        parser.add_argument(
            "--tls-ca",
            default=None,
            help="speak TLS, verifying the commserver against this CA (default MPN_SIMULATOR_TLS_CA; "
            '"" for plain TCP)',
        )
        parser.add_argument(
            "--tls-cert", default=None, help="client certificate (PEM; default MPN_SIMULATOR_TLS_CERT)"
        )
        parser.add_argument("--tls-key", default=None, help="its key (PEM; default MPN_SIMULATOR_TLS_KEY)")
        parser.add_argument(
            "--biller", action="append", default=[], help="biller code (収納機関コード); repeatable"
        )
        parser.add_argument(
            "--invoice", action="append", default=[], help="invoice number to pay; repeatable"
        )
        parser.add_argument("--count", type=int, default=1, help="bills for pay/resend/reverse/teller-files")
        parser.add_argument("--rate", type=float, default=100.0, help="load: requests per second")
        parser.add_argument("--duration", type=float, default=10.0, help="load: seconds")
        parser.add_argument("--connections", type=int, default=4, help="load/storm: TCP connections")
        parser.add_argument("--inquiries", type=float, default=0.0, help="load: share of inquiries (0–1)")
        parser.add_argument("--invoices", type=int, default=None, help="load: at most this many bills")
        parser.add_argument("--skip", type=int, default=0, help="load: leave the first N published bills")
        parser.add_argument("--copies", type=int, default=20, help="storm: copies of the payment frame")
        parser.add_argument("--channel", default=None, help="channel (02 ATM, 03 IB, 05 情報リンク, …)")
        parser.add_argument("--watch-paid", action="store_true", help="load: measure frame → invoice paid")
        parser.add_argument("--date", default=None, help="processing date YYYYMMDD (default: the line's)")
        parser.add_argument("--out", type=Path, default=None, help="teller-files: directory")
        parser.add_argument(
            "--json", type=Path, default=None, help="load: also write the figures to this file"
        )

    def handle(self, *args: Any, **o: Any) -> None:
        from billing.tenancy import bind_cross_tenant

        bind_cross_tenant("command")  # a command is not a tenant's request
        self.o = o
        try:
            self.tls = simulator.tls_context(o["tls_ca"], o["tls_cert"], o["tls_key"])
        except (ValueError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        self.paid: list[Target] = []
        self.used: list[Target] = []
        self.repeated: list[Target] = []  # teller payments the line reported, for the teller file too
        scenario = o["scenario"]
        state = simulator.line_state()
        day = simulator.processing_day(state, o["date"])
        codes = o["biller"] or [c for c in [simulator.first_biller_code()] if c]
        if not codes:
            raise CommandError("no active biller: onboard one (or run make run for the demo data)")
        self.frames = Frames(day, simulator.serial_base(simulator.CENTRE, day))
        self.codes = codes
        steps = {
            "open": self.open_day,
            "pay": self.pay,
            "load": self.load,
            "resend": self.resend,
            "storm": self.storm,
            "reverse": self.reverse,
            "counters": self.counters,
            "duplicate": self.duplicate,
            "teller_line": self.teller_line,
            "cancelled": self.pay_cancelled,
            "preclose": lambda line: self.close(line, 1),
            "close": lambda line: self.close(line, 2),
        }
        if scenario == "teller-files":
            self.teller_files()
            return
        needs_open = scenario not in {"open", "close", "preclose"} and state.state != LineState.State.OPEN
        # the steps reconciliation must find first (the demo has few bills); no load step: paying the used
        # bills again at 100/s would bury the day's one double payment under a thousand
        order = ["open", "pay", "duplicate", "reverse", "teller_line", "cancelled", "resend", "storm"]
        order += ["counters", "preclose", "close"]
        plan = order if scenario == "day" else (["open"] if needs_open else []) + [scenario]
        targets_needed = {"pay", "load", "resend", "storm", "reverse"} & set(plan)
        self.targets = self.load_targets() if targets_needed else []
        reserved: list[Target] | None = None
        if scenario == "day":  # the teller files pay bills of their own, not ones the line pays
            keep = max(o["count"], 1) if len(self.targets) >= 6 else 0  # bills of their own, if there are
            reserved, self.targets = (
                self.targets[len(self.targets) - keep :],
                self.targets[: len(self.targets) - keep],
            )
        try:
            asyncio.run(self.run(plan, steps))
        except OSError as exc:  # ssl.SSLError included: a certificate the commserver or we refuse
            over = " over TLS" if self.tls else ""
            raise CommandError(
                f"cannot reach the commserver at {o['host']}:{o['port']}{over}: {exc}"
            ) from exc
        if scenario == "day":
            self.teller_files((reserved or []) + self.repeated)
        if scenario == "pay":
            self.wait_paid()

    def wait_paid(self, seconds: float = 10.0) -> None:
        """After ``pay``: wait for the workers to apply the payments and say what the bills show now."""
        from billing.models import Invoice

        numbers = [t.number for t in self.paid]
        deadline = time.monotonic() + seconds
        while True:
            statuses = dict(
                Invoice.objects.filter(pk__in=[t.invoice_id for t in self.paid]).values_list(
                    "number", "status"
                )
            )
            if all(s == Invoice.Status.PAID for s in statuses.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for number in numbers:
            status = statuses.get(number, "?")
            if status == Invoice.Status.PAID:
                self.stdout.write(f"invoice {number} is paid")
            else:
                self.stdout.write(
                    f"invoice {number} is {status} after {seconds:.0f} s: are the workers running?"
                )

    # --- steps ------------------------------------------------------------------------------------------

    async def run(self, plan: list[str], steps: dict[str, Any]) -> None:
        async with Line(self.o["host"], self.o["port"], self.frames, tls=self.tls) as line:
            await line.connect()
            for name in plan:
                self.stdout.write(f"— {name}")
                stats = await steps[name](line)
                for text in stats.summary():
                    self.stdout.write(text)

    def load_targets(self) -> list[Target]:
        o = self.o
        limit = o["invoices"] if o["scenario"] in {"load", "day"} else None
        if o["invoice"]:
            targets = simulator.targets_load(
                numbers=o["invoice"], biller_codes=o["biller"], channel=o["channel"]
            )
            missing = set(o["invoice"]) - {t.number for t in targets}
            if missing:
                raise CommandError(f"not published (or unknown): {', '.join(sorted(missing))}")
            return targets
        if limit is None and o["scenario"] not in {"load", "day"}:
            limit = max(o["count"], 1) * 3 + 1
        targets = simulator.targets_load(
            biller_codes=self.codes, limit=limit, offset=o["skip"], channel=o["channel"]
        )
        if not targets:
            raise CommandError(f"no published bill of {', '.join(self.codes)} left to pay")
        return targets

    def take(self, n: int) -> list[Target]:
        """Up to ``n`` bills not used by an earlier step (a step with none left says so and does less)."""
        taken, self.targets = self.targets[:n], self.targets[n:]
        self.used += taken
        if len(taken) < n:
            self.stdout.write(
                f"  {n} published bills wanted, {len(taken)} left: publish more for a fuller run"
            )
        return taken

    async def open_day(self, line: Line) -> Stats:
        stats = Stats()
        answer = await line.request(self.frames.open_day(self.codes[0]), stats)
        self.stdout.write(
            f"  online day {self.frames.day} opened" if answer and answer.code == "0000" else "  not opened"
        )
        return stats

    async def close(self, line: Line, kind: int) -> Stats:
        stats = Stats()
        await line.request(self.frames.close(self.codes[0], kind), stats)
        return stats

    async def pay(self, line: Line) -> Stats:
        stats = Stats()
        targets = self.targets if self.o["invoice"] else self.take(self.o["count"])
        if self.o["invoice"]:
            self.targets = []
        for t in targets:
            answer = await line.request(self.frames.inquiry(t), stats)
            if answer is None or answer.code != "0000":
                code = answer.code if answer else "no answer"
                self.stdout.write(f"  {t.number}: inquiry answered {code}; not paid")
                continue
            owed = codec.parse_body(answer.body).elements[4]
            payment = self.frames.payment(t, amount=int(owed))
            answer = await line.request(payment, stats)
            code = answer.code if answer else "no answer"
            if answer is not None and answer.code == "0000":
                self.paid.append(t)
            self.stdout.write(
                f"  {t.number}: ¥{int(owed):,} paid at bank {t.bank_code} channel {t.channel}, "
                f"answered {code}, key {payment.transaction_key}"
            )
        return stats

    async def load(self, line: Line) -> Stats:
        o = self.o
        if not self.targets:
            # every bill was used by an earlier step: pay them again (double payments)
            self.targets = self.used
        if not self.targets:
            self.stdout.write("  no published bill to pay")
            return Stats()
        watcher = None
        if o["watch_paid"]:
            if not settings.REDIS_URL:
                raise CommandError("--watch-paid listens to the live events: set REDIS_URL")
            watcher = simulator.PaidWatcher(str(settings.REDIS_URL), {t.biller_id for t in self.targets})
        try:
            self.stdout.write(
                f"  {o['rate']:,.0f}/s for {o['duration']:.0f} s over {o['connections']} connections, "
                f"{len(self.targets):,} bills"
            )
            stats = await simulator.load(
                line,
                self.targets,
                rate=o["rate"],
                duration=o["duration"],
                connections=o["connections"],
                inquiry_share=o["inquiries"],
                watcher=watcher,
            )
            if o["json"] is not None:
                o["json"].write_text(json.dumps(stats.as_dict(), indent=2))
            return stats
        finally:
            if watcher is not None:
                watcher.stop()

    async def resend(self, line: Line) -> Stats:
        stats = Stats()
        n = self.o["count"]
        sent = [self.frames.payment(t) for t in self.take(n)]
        await line.requests(sent, stats)
        unknown = [self.frames.payment(t) for t in self.take(n)]
        await line.requests([self.frames.resend(m) for m in sent + unknown], stats)
        self.stdout.write(
            f"  {len(sent)} resends of stored payments (unchanged), "
            f"{len(unknown)} of payments never sent (recorded)"
        )
        return stats

    async def storm(self, line: Line) -> Stats:
        stats = Stats()
        await line.connect(self.o["connections"])
        taken = self.take(1)
        if not taken:
            return stats
        target = taken[0]
        payment = self.frames.payment(target)
        copies = [payment] * self.o["copies"]
        await line.requests(copies, stats)
        self.stdout.write(
            f"  {len(copies)} copies of {payment.transaction_key} ({target.number}): one payment"
        )
        return stats

    async def reverse(self, line: Line) -> Stats:
        stats = Stats()
        payments = [self.frames.payment(t, channel="01") for t in self.take(self.o["count"])]
        await line.requests(payments, stats)
        await line.requests([self.frames.reversal(p) for p in payments], stats)
        if payments:
            unknown = self.frames.reversal(payments[0])
            unknown.elements[9] = simulator.CENTRE.ljust(10) + self.frames.day + "99999999"
            atm = self.frames.reversal(payments[0])
            atm.elements[7] = "02"
            answers = await line.requests([unknown, atm], stats)
            codes = [a.code if a else "no answer" for a in answers]
            self.stdout.write(f"  reversal of an unknown payment: {codes[0]}; from an ATM: {codes[1]}")
        return stats

    async def duplicate(self, line: Line) -> Stats:
        """Pay the first bill paid today once more, under a new transaction key: a double payment."""
        stats = Stats()
        if not self.paid:
            self.stdout.write("  no bill paid yet to pay twice")
            return stats
        target = self.paid[0]
        payment = self.frames.payment(target)
        answer = await line.request(payment, stats)
        self.stdout.write(
            f"  {target.number} paid again (key {payment.transaction_key}), answered "
            f"{answer.code if answer else 'no answer'}: a double payment"
        )
        return stats

    async def teller_line(self, line: Line) -> Stats:
        """A teller payment the bank reports on the line (channel 01); its teller file reports it again."""
        from asgiref.sync import sync_to_async

        stats = Stats()
        for taken in self.take(1):  # at a bank whose contract allows the teller channel, if any does
            found = await sync_to_async(simulator.targets_load)(numbers=[taken.number], channel="01")
            target = replace(found[0] if found else taken, channel="01")
            payment = self.frames.payment(target)
            answer = await line.request(payment, stats)
            self.repeated.append(target)
            self.stdout.write(
                f"  {target.number}: teller payment on the line at bank {target.bank_code}, answered "
                f"{answer.code if answer else 'no answer'}; the teller file will report it again"
            )
        return stats

    async def pay_cancelled(self, line: Line) -> Stats:
        """A payment of a bill the biller has cancelled (the payer kept the old numbers): 仮消込."""
        from asgiref.sync import sync_to_async

        stats = Stats()
        targets = await sync_to_async(simulator.targets_load)(
            biller_codes=self.codes, limit=1, status="cancelled"
        )
        if not targets:
            self.stdout.write("  no cancelled bill with payment numbers to pay")
            return stats
        payment = self.frames.payment(targets[0])
        answer = await line.request(payment, stats)
        self.stdout.write(
            f"  cancelled bill {targets[0].number} paid, answered {answer.code if answer else 'no answer'}: "
            "stored as provisional (仮消込)"
        )
        return stats

    async def counters(self, line: Line) -> Stats:
        stats = Stats()
        from asgiref.sync import sync_to_async

        for code in self.codes:
            mine = await sync_to_async(simulator.centre_counts)(code, self.frames.day)
            if self.o["scenario"] == "day":  # the centre counts a payment that never reached the line
                mine = (mine[0] + 1, mine[1] + 1_100, mine[2], mine[3])
            answer = await line.request(self.frames.counters(code, self.frames.day, mine), stats)
            if answer is None or answer.code != "0000":
                self.stdout.write(f"  {code}: counters answered {answer.code if answer else 'no answer'}")
                continue
            e = codec.parse_body(answer.body).elements
            server = (int(e[16]), int(e[17]), int(e[18]), int(e[19]))
            same = "agree" if server == mine else "DIFFER (a reconciliation finding)"
            self.stdout.write(
                f"  {code}: centre {mine[0]:,} / ¥{mine[1]:,} today, "
                f"{mine[2]:,} / ¥{mine[3]:,} the day before; "
                f"server {server[0]:,} / ¥{server[1]:,}, {server[2]:,} / ¥{server[3]:,}: {same}"
            )
        return stats

    def teller_files(self, reserved: list[Target] | None = None) -> None:
        self.stdout.write("— teller-files")
        out = self.o["out"] or Path(settings.PAYEASY_TELLER_DROP_DIR or ".") / "incoming"
        out.mkdir(parents=True, exist_ok=True)
        day = self.frames.day
        now = datetime.datetime.now(codec.JST)
        for code in self.codes:
            if reserved is not None:
                targets = [t for t in reserved if t.biller_code == code]
            else:
                targets = simulator.targets_load(biller_codes=[code], limit=self.o["count"], channel="01")
            if not targets:
                self.stdout.write(f"  {code}: no published bill for a teller file")
                continue
            by_bank: dict[str, list[Target]] = {}
            for t in targets:
                by_bank.setdefault(t.bank_code, []).append(t)
            for bank, rows in by_bank.items():
                header = codec.BatchHeader(code, "ｼﾕｳﾉｳｷｶﾝ", day, bank, "ｼﾐﾕﾚ-ﾀｷﾞﾝｺｳ")
                records = [
                    codec.BatchData(
                        customer_number=t.customer_number,
                        confirmation_number=t.confirmation_number,
                        amount=t.amount,
                        branch_code="101",
                        paid_date=day,
                        paid_time=now.strftime("%H%M%S"),
                        serial="00000000",
                        payer_name_kana="ｼﾐﾕﾚ-ﾀ",
                    )
                    for t in rows
                ]
                first = simulator.teller_serial_base(bank, day)
                records = [replace(r, serial=f"{first + i:08d}") for i, r in enumerate(records)]
                serial = 1
                while (out / codec.batch_file_name(header, serial)).exists() and serial < 999:
                    serial += 1
                batch = codec.make_batch_file(header, records, serial=serial)
                path = out / batch.name
                part = path.with_name(path.name + ".part")
                part.write_bytes(codec.build_batch_file(batch))
                part.rename(path)  # the drop folder never sees half a file
                self.stdout.write(
                    f"  wrote {path}: {len(records)} teller payments, ¥{sum(r.amount for r in records):,}"
                )
