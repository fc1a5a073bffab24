"""Unit tests of the parts that need no engine: price conversion, frames, stream positions.

Run: PYTHONPATH=clients/python/src python -m unittest discover -s clients/python/tests
(tests/python_client.rs runs them; the engine-facing parts are tested there too).
"""
import json
import os
import tempfile
import unittest
from decimal import Decimal

import flatbuffers

from veloz_client import (
    BalanceReport, ExecType, ExecutionReport, Instrument, Liquidity, LogonAck, PriceError,
    RejectReason, Side, StreamResumed, StreamState, to_json,
)
from veloz_client import codec
from veloz_client import generated as g

AAPL = Instrument(id=1, symbol="AAPL", price_scale=4, tick_size=100, lot_size=1, min_qty=1,
                  max_qty=1_000_000)


def frame(build_payload, kind):
    b = flatbuffers.Builder(256)
    payload = build_payload(b)
    g.MessageStart(b)
    g.MessageAddPayloadType(b, kind)
    g.MessageAddPayload(b, payload)
    b.FinishSizePrefixed(g.MessageEnd(b))
    return bytes(b.Output())


class Prices(unittest.TestCase):
    def test_exact_both_ways(self):
        self.assertEqual(AAPL.tick, Decimal("0.01"))
        self.assertEqual(str(AAPL.price(1_900_100)), "190.01")
        self.assertEqual(str(AAPL.price(0)), "0.00")
        self.assertEqual(str(AAPL.price(-100)), "-0.01")
        # Not on tick (the engine never sends one): shown with every digit, never rounded.
        self.assertEqual(str(AAPL.price(1_900_101)), "190.0101")
        for text in ["190.01", "190.010", "190.0100000000000000000000000000000000000"]:
            self.assertEqual(AAPL.price_units(Decimal(text)), 1_900_100, text)
        self.assertEqual(AAPL.price_units("190"), 1_900_000)
        self.assertEqual(AAPL.price_units(190), 1_900_000)
        for units in [100, 1_900_100, 2**63 - 8, -(2**63) + 8]:
            units -= units % 100
            self.assertEqual(AAPL.price_units(AAPL.price(units)), units)

    def test_off_tick_is_refused_naming_the_value(self):
        for text in ["190.005", "190.0001", "190.0100000000000000000000000000000000001"]:
            with self.assertRaises(PriceError) as e:
                AAPL.price_units(Decimal(text))
            self.assertIn(text, str(e.exception))
            self.assertIn("tick 0.01", str(e.exception))
        with self.assertRaises(PriceError) as e:
            AAPL.price_units("190.005")
        self.assertIn("190.00 and 190.01", str(e.exception))

    def test_not_a_price(self):
        with self.assertRaises(TypeError):
            AAPL.price_units(190.01)
        for bad in ["abc", "NaN", "Infinity", "1e30"]:
            with self.assertRaises(PriceError, msg=bad):
                AAPL.price_units(bad)

    def test_other_scales(self):
        coarse = Instrument(2, "X", 0, 5, 1, 1, 10)
        self.assertEqual((coarse.tick, str(coarse.price(25))), (Decimal(5), "25"))
        with self.assertRaises(PriceError):
            coarse.price_units("26")
        fine = Instrument(3, "Y", 8, 2500, 1, 1, 10)
        self.assertEqual(str(fine.tick), "0.000025")
        self.assertEqual(fine.price_units("0.308625"), 30_862_500)


class Frames(unittest.TestCase):
    def test_logon_ack_then_report_decoded_with_its_instruments(self):
        def ack(b):
            sym = b.CreateString("AAPL")
            g.InstrumentInfoStart(b)
            g.InstrumentInfoAddId(b, 1)
            g.InstrumentInfoAddSymbol(b, sym)
            g.InstrumentInfoAddPriceScale(b, 4)
            g.InstrumentInfoAddTickSize(b, 100)
            g.InstrumentInfoAddLotSize(b, 1)
            g.InstrumentInfoAddMinQty(b, 1)
            g.InstrumentInfoAddMaxQty(b, 1_000_000)
            inst = g.InstrumentInfoEnd(b)
            g.LogonAckStartInstrumentsVector(b, 1)
            b.PrependUOffsetTRelative(inst)
            vec = b.EndVector()
            g.LogonAckStart(b)
            g.LogonAckAddSessionId(b, 9)
            g.LogonAckAddHeartbeatIntervalMs(b, 1000)
            g.LogonAckAddInstruments(b, vec)
            g.LogonAckAddStreams(b, 2)
            return g.LogonAckEnd(b)

        m = codec.decode(frame(ack, g.Payload.LogonAck), {})
        self.assertEqual(m, LogonAck(9, 1000, (AAPL,), 2))

        def fill(b):
            g.ExecutionReportStart(b)
            g.ExecutionReportAddExecType(b, ExecType.PartiallyFilled)
            g.ExecutionReportAddOrderId(b, 5)
            g.ExecutionReportAddClientOrderId(b, 7)
            g.ExecutionReportAddSymbolId(b, 1)
            g.ExecutionReportAddSide(b, Side.Sell)
            g.ExecutionReportAddLastQty(b, 4)
            g.ExecutionReportAddLastPrice(b, 1_900_100)
            g.ExecutionReportAddLeavesQty(b, 6)
            g.ExecutionReportAddLiquidity(b, Liquidity.Maker)
            g.ExecutionReportAddStream(b, 1)
            g.ExecutionReportAddStreamSeq(b, 3)
            return g.ExecutionReportEnd(b)

        r = codec.decode(frame(fill, g.Payload.ExecutionReport), {1: AAPL})
        self.assertIsInstance(r, ExecutionReport)
        self.assertEqual((r.exec_type, r.side, r.symbol, r.last_price, r.leaves_qty),
                         (ExecType.PartiallyFilled, Side.Sell, "AAPL", Decimal("190.01"), 6))
        self.assertIsNone(r.reject_reason)
        out = to_json(r)
        self.assertEqual((out["type"], out["exec_type"], out["last_price"]),
                         ("ExecutionReport", "PartiallyFilled", "190.01"))
        self.assertNotIn("reject_reason", out)
        json.dumps(out)
        # Without the instrument, no price is made up.
        self.assertIsNone(codec.decode(frame(fill, g.Payload.ExecutionReport), {}).last_price)

    def test_balance_report_decoded_and_request_encoded(self):
        def report(b):
            usd = b.CreateString("USD")
            g.AssetBalanceStart(b)
            g.AssetBalanceAddAssetId(b, 1)
            g.AssetBalanceAddName(b, usd)
            g.AssetBalanceAddScale(b, 2)
            g.AssetBalanceAddAvailable(b, 123_456)
            g.AssetBalanceAddHeld(b, 1_002)
            asset = g.AssetBalanceEnd(b)
            g.BalanceReportStartBalancesVector(b, 1)
            b.PrependUOffsetTRelative(asset)
            balances = b.EndVector()
            g.ShardBalanceStart(b)
            g.ShardBalanceAddShard(b, 1)
            g.ShardBalanceAddAssetId(b, 1)
            g.ShardBalanceAddAvailable(b, 123_456)
            g.ShardBalanceAddHeld(b, 1_002)
            piece = g.ShardBalanceEnd(b)
            g.BalanceReportStartSlicesVector(b, 1)
            b.PrependUOffsetTRelative(piece)
            slices = b.EndVector()
            g.BalanceReportStart(b)
            g.BalanceReportAddRequestId(b, 4)
            g.BalanceReportAddAccountId(b, 7)
            g.BalanceReportAddBalances(b, balances)
            g.BalanceReportAddSlices(b, slices)
            return g.BalanceReportEnd(b)

        m = codec.decode(frame(report, g.Payload.BalanceReport), {})
        self.assertIsInstance(m, BalanceReport)
        self.assertEqual((m.request_id, m.account_id, m.reject_reason), (4, 7, None))
        usd = m.of("USD")
        self.assertEqual((usd.asset_id, usd.scale, usd.available, usd.held),
                         (1, 2, 123_456, 1_002))
        self.assertEqual((usd.available_units, usd.held_units),
                         (Decimal("1234.56"), Decimal("10.02")))
        self.assertEqual([(s.shard, s.asset_id, s.available) for s in m.slices],
                         [(1, 1, 123_456)])
        out = to_json(m)
        self.assertEqual((out["type"], out["balances"][0]["available_units"]),
                         ("BalanceReport", "1234.56"))
        json.dumps(out)
        # The request travels client -> engine only.
        with self.assertRaises(codec.DecodeError) as e:
            codec.decode(codec.balance_request(4, by_shard=True), {})
        self.assertIn("BalanceRequest", str(e.exception))
        # The funds and limit reject reasons have the engine's codes.
        self.assertEqual([RejectReason(c).name for c in range(16, 22)],
                         ["InsufficientFunds", "OrderQtyLimit", "OrderNotionalLimit",
                          "OpenOrdersLimit", "NotionalRateLimit", "AmountTooLarge"])

    def test_unknown_codes_and_directions_are_errors(self):
        def bad_exec_type(b):
            g.ExecutionReportStart(b)
            g.ExecutionReportAddExecType(b, 200)
            return g.ExecutionReportEnd(b)

        with self.assertRaises(codec.DecodeError):
            codec.decode(frame(bad_exec_type, g.Payload.ExecutionReport), {})
        with self.assertRaises(codec.DecodeError) as e:
            codec.decode(codec.new_order(1, 1, Side.Buy, 1_900_000, 1), {})
        self.assertIn("NewOrder", str(e.exception))
        with self.assertRaises(codec.DecodeError):
            codec.decode(b"\x04\x00\x00\x00abcd", {})

    def test_reader_reassembles_pieces_and_refuses_huge_frames(self):
        frames = [codec.heartbeat(1), codec.logout(), codec.mass_cancel(3)]
        data = b"".join(frames)
        reader = codec.FrameReader()
        got = []
        for i in range(0, len(data), 3):
            got.extend(reader.feed(data[i:i + 3]))
        self.assertEqual(got, frames)
        with self.assertRaises(codec.DecodeError):
            list(codec.FrameReader().feed((70_000).to_bytes(4, "little")))


class Streams(unittest.TestCase):
    def report(self, stream, seq):
        return ExecutionReport(ExecType.Accepted, 1, 1, 1, "AAPL", True, Side.Buy,
                               Decimal("1"), 1, 0, None, 1, 0, Liquidity.NotApplicable, None,
                               None, "", 1, 1, False, 0, stream, seq)

    def test_positions_persist_and_duplicates_are_dropped(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "state.json")
            s = StreamState(path, 1)
            self.assertIsNone(s.resume_after(always=False))
            s.ensure(2)
            self.assertTrue(s.accept(self.report(1, 5)))
            self.assertTrue(s.accept(self.report(1, 6)))
            self.assertFalse(s.accept(self.report(1, 6)))
            with open(path) as f:
                self.assertEqual(json.load(f), {"account": 1, "last": [0, 6]})
            self.assertEqual(StreamState(path, 1).resume_after(always=False), [0, 6])

    def test_missing_range(self):
        self.assertEqual(StreamResumed(0, 2, 10, 3, 6).missing, (3, 5))
        self.assertIsNone(StreamResumed(0, 2, 10, 8, 3).missing)
        self.assertIsNone(StreamResumed(0, 10, 10, 0, 0).missing)


if __name__ == "__main__":
    unittest.main()
