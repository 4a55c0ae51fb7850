# ssmd records: the wire and archive format of everything ssmd publishes and stores.
#
# Evolution rules (Cap'n Proto's own): never renumber or retype a field, add fields only at the
# next ordinal, append enumerants at the end. A reader built from an older version of this file
# sees new fields as absent; a reader of this version sees fields an old writer did not set as
# their defaults. The seed's structs (Trade, Side, OrderBookUpdate, Level, MarketStatus, Status)
# keep their names and ordinals @0.. exactly as the seed design wrote them.
#
# Conventions for every field added after the seed:
# - Exact values are fixed-point integers. A field ending in `E4` holds dollars x 10^4 (integer
#   ten-thousandths: "0.5600" -> 5600); a field ending in `E2` holds contracts x 10^2 (integer
#   hundredths: "136.00" -> 13600). The seed's Float64/UInt32 fields are kept beside them for old
#   readers and are derived from the exact fields (Float64 = nearest double; UInt32 = whole
#   contracts, truncated, saturating at 2^32-1); readers of this version use the exact fields.
# - Times are Unix nanoseconds (UInt64). `timestamp` is the exchange's time for the event,
#   0 when the exchange message carried none (e.g. orderbook_snapshot). `receivedNs` is the local
#   time at which ssmd received the frame the record came from (always set).
# - `sid` and `seq` are Kalshi's subscription id and per-subscription sequence number; Kalshi
#   starts both at 1, so 0 means "the message had none" (e.g. ticker frames have no seq).
# - `connectionId` is an opaque id the connector assigns to each exchange WebSocket connection
#   (sids and seqs restart per connection, so (connectionId, sid) names a sequence); 0 = unknown.
# - `flagged` is true for records received between a detected exchange gap and the next snapshot
#   of the ticker's book: they may be inconsistent with what the exchange really did.
#
# How a consumer knows the type of a message:
# - a message whose root is `Record` is self-describing (a union of every record type); archive
#   files are a stream of `Record` messages and internal streams carry `Batch` messages;
# - a message on a public per-type subject ({env}.kalshi.trade.{ticker} ...) has the record's own
#   struct as its root, named by the subject's type token, as the seed defined.
# Decode with the capnp tool: `capnp decode schemas/ssmd.capnp Record < file`.

@0x9b0d8c71cc62d5d8;

struct Trade {
  timestamp @0 :UInt64;        # Unix nanos (exchange time, 0 = none)
  ticker @1 :Text;
  price @2 :Float64;           # YES price in dollars, approximate: use yesPriceE4
  size @3 :UInt32;             # whole contracts, truncated: use countE2
  side @4 :Side;               # taker side, see enum Side
  tradeId @5 :Text;
  yesPriceE4 @6 :Int64;        # YES price x 10^4 (exact)
  noPriceE4 @7 :Int64;         # NO price x 10^4 (exact; = 10000 - yesPriceE4)
  countE2 @8 :Int64;           # contracts x 10^2 (exact; fractional contracts exist)
  receivedNs @9 :UInt64;
  sid @10 :UInt64;
  seq @11 :UInt64;
  connectionId @12 :UInt64;
  flagged @13 :Bool;
  blockTrade @14 :Bool;        # Kalshi's is_block_trade
}

# Taker side of a trade, expressed on the YES contract.
# buy  = the taker bought YES: Kalshi taker_side / taker_outcome_side "yes", taker_book_side "bid";
# sell = the taker sold YES (bought NO) into a resting YES bid: taker_side "no", taker_book_side "ask".
enum Side {
  buy @0;
  sell @1;
}

struct OrderBookUpdate {
  timestamp @0 :UInt64;        # Unix nanos (exchange time, 0 = none: snapshots carry none)
  ticker @1 :Text;
  bids @2 :List(Level);        # YES bids, best (highest price) first
  asks @3 :List(Level);        # YES asks = NO bids at price 1 - p, best (lowest price) first
  kind @4 :BookUpdateKind;     # an old writer's message (no kind) reads as a snapshot
  receivedNs @5 :UInt64;
  sid @6 :UInt64;
  seq @7 :UInt64;
  connectionId @8 :UInt64;
  flagged @9 :Bool;
}

# snapshot: bids and asks are the whole book; every level not listed is empty.
# change: bids and asks list only the levels that changed, each with its new ABSOLUTE size
# (size 0 removes the level), so applying a change twice leaves the same book.
enum BookUpdateKind {
  snapshot @0;
  change @1;
}

struct Level {
  price @0 :Float64;           # dollars, approximate: use priceE4
  size @1 :UInt32;             # whole contracts, truncated: use sizeE2
  priceE4 @2 :Int64;           # price x 10^4 (exact)
  sizeE2 @3 :Int64;            # absolute size at this price, contracts x 10^2 (exact)
}

struct MarketStatus {
  timestamp @0 :UInt64;        # Unix nanos (exchange time of the event, 0 = none)
  ticker @1 :Text;
  status @2 :Status;
  receivedNs @3 :UInt64;
  sid @4 :UInt64;
  seq @5 :UInt64;
  connectionId @6 :UInt64;
  eventType @7 :Text;          # Kalshi's lifecycle event_type verbatim ("created", "determined", ...)
  result @8 :Text;             # market result on determined ("yes", "no", ...), "" = none
  settlementValueE4 @9 :Int64 = -1;   # settlement value x 10^4, -1 = none
  openNs @10 :UInt64;          # market open time, 0 = not in this event
  closeNs @11 :UInt64;         # market close time, 0 = not in this event
}

# A market's state. open/closed/halted are the seed's; the rest are Kalshi's lifecycle statuses
# (Market.status): initialized (not yet open), active (trading), inactive (paused), closed,
# determined (result known), disputed, amended, finalized (settled). `unknown` means the event does
# not imply a status (e.g. close_date_updated, metadata_updated) or ssmd did not recognize it.
enum Status {
  open @0;
  closed @1;
  halted @2;
  initialized @3;
  active @4;
  inactive @5;
  determined @6;
  disputed @7;
  amended @8;
  finalized @9;
  unknown @10;
}

# A hole in the data of one ticker (or of a whole connection when ticker is ""), so that
# replays and clients see it. A gap is written when detected (endNs = 0: still open) and again
# when it closes (endNs set); readers keep the last record per (kind, connectionId, sid, startNs).
struct Gap {
  ticker @0 :Text;
  kind @1 :GapKind;
  startNs @2 :UInt64;          # last time data was known good
  endNs @3 :UInt64;            # time data is good again (recovery snapshot / reconnect), 0 = open
  receivedNs @4 :UInt64;       # when ssmd detected or closed the gap
  connectionId @5 :UInt64;
  sid @6 :UInt64;
  expectedSeq @7 :UInt64;      # sequence number that should have come next, 0 = n/a
  receivedSeq @8 :UInt64;      # sequence number that came instead, 0 = n/a
  missing @9 :UInt64;          # count of missing sequence numbers, 0 = unknown or n/a
  stream @10 :Text;            # bus gaps: the JetStream stream (or subject) with the hole
}

enum GapKind {
  exchangeSeq @0;              # a Kalshi seq jumped forward on (connectionId, sid)
  seqReset @1;                 # a Kalshi seq went back / restarted (new sid or resubscribe)
  disconnect @2;               # the exchange connection was down from startNs to endNs
  bus @3;                      # a JetStream sequence hole seen by an ssmd consumer
}

# One exchange WebSocket frame exactly as received: the source of truth normalized data is
# rebuilt from.
struct RawFrame {
  receivedNs @0 :UInt64;
  connectionId @1 :UInt64;
  channel @2 :Text;            # the frame's "type" ("orderbook_delta", "trade", "error", ...)
  sid @3 :UInt64;              # 0 = none
  seq @4 :UInt64;              # 0 = none
  data @5 :Data;               # the original frame bytes, unmodified
  ticker @6 :Text;             # market_ticker if the frame names one, else "" (partition key)
  frameNo @7 :UInt64;          # 1-based position of the frame on its connection, 0 = unknown
}

# Self-describing envelope: one record of any type. Archive files are a stream of these.
struct Record {
  union {
    trade @0 :Trade;
    orderBook @1 :OrderBookUpdate;
    status @2 :MarketStatus;
    gap @3 :Gap;
    raw @4 :RawFrame;
  }
}

# One event of an internal batched stream: records of one partition, in receive order.
struct Batch {
  records @0 :List(Record);
}
