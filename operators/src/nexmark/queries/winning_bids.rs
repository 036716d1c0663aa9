//! The winning bid of every auction, decided when the auction closes in event time: the shared
//! first half of queries 4 and 9.

use std::cmp::{Ordering, Reverse};

use rheo_engine::{Either, Stream, Timestamp};

use crate::nexmark::{Auction, Bid, Event};
use crate::process::{KeyedProcess, Process, ProcessContext};

/// Whether `a` beats `b`: the higher price, then the earlier bid, then a fixed order on the
/// remaining fields, so the winner does not depend on arrival order.
pub fn beats(a: &Bid, b: &Bid) -> bool {
    (a.price, Reverse(a.date_time))
        .cmp(&(b.price, Reverse(b.date_time)))
        .then_with(|| b.cmp(a))
        == Ordering::Greater
}

/// Whether `bid` counts for `auction`: placed while it was open, at or above the reserve if
/// `reserve` is asked for.
pub fn counts(auction: &Auction, bid: &Bid, reserve: bool) -> bool {
    (auction.date_time..=auction.expires).contains(&bid.date_time)
        && (!reserve || bid.price >= auction.reserve)
}

/// One auction's state: the auction once seen, its best bid so far, and bids that arrived
/// before it (possible with parallel sources).
#[derive(Debug, Clone, Default)]
pub struct AuctionBids {
    auction: Option<Auction>,
    best: Option<Bid>,
    early: Vec<Bid>,
}

impl AuctionBids {
    fn offer(&mut self, bid: Bid, reserve: bool) {
        let Some(auction) = &self.auction else {
            return;
        };
        if counts(auction, &bid, reserve) && self.best.as_ref().is_none_or(|b| beats(&bid, b)) {
            self.best = Some(bid);
        }
    }
}

/// The keyed logic: per auction id, keep the best bid; when the watermark passes the auction's
/// close, emit `(auction, best bid)` and forget the auction. A bid for an auction not seen yet
/// waits until the watermark passes its own time: an auction opening after the bid cannot
/// count it, so the bid is then dropped.
#[derive(Debug, Clone, Copy)]
pub struct WinningBids {
    /// Whether a bid must reach the auction's reserve price (query 9) or not (query 4).
    pub reserve: bool,
}

impl KeyedProcess<u64, Either<Auction, Bid>> for WinningBids {
    type Value = AuctionBids;
    type Out = (Auction, Bid);

    fn on_record(
        &self,
        _: &u64,
        record: Either<Auction, Bid>,
        cx: &mut ProcessContext<'_, u64, AuctionBids, (Auction, Bid)>,
    ) {
        match record {
            Either::Left(auction) => {
                cx.register_timer(auction.expires + 1);
                let state = cx.value_or_insert_with(AuctionBids::default);
                let early = std::mem::take(&mut state.early);
                state.auction = Some(auction);
                for bid in early {
                    state.offer(bid, self.reserve);
                }
            }
            Either::Right(bid) => {
                let known = cx.value().is_some_and(|s| s.auction.is_some());
                if !known {
                    cx.register_timer(bid.date_time + 1);
                }
                let state = cx.value_or_insert_with(AuctionBids::default);
                if known {
                    state.offer(bid, self.reserve);
                } else {
                    state.early.push(bid);
                }
            }
        }
    }

    fn on_timer(
        &self,
        _: &u64,
        time: Timestamp,
        cx: &mut ProcessContext<'_, u64, AuctionBids, (Auction, Bid)>,
    ) {
        let close = match cx.value() {
            None => return,
            Some(state) => match &state.auction {
                Some(auction) => time > auction.expires,
                None => {
                    state.early.retain(|b| b.date_time >= time);
                    state.early.is_empty()
                }
            },
        };
        if close
            && let Some(AuctionBids {
                auction: Some(auction),
                best: Some(best),
                ..
            }) = cx.take_value()
        {
            cx.emit((auction, best));
        }
    }
}

/// Per auction that received a counting bid, `(auction, winning bid)`, emitted at its close.
pub fn winning_bids(events: &Stream<Event>, name: &str, reserve: bool) -> Stream<(Auction, Bid)> {
    events
        .select(|e: Event| match e {
            Event::Auction(a) => Some(Either::Left(a)),
            Event::Bid(b) => Some(Either::Right(b)),
            Event::Person(_) => None,
        })
        .key_by(|r: &Either<Auction, Bid>| match r {
            Either::Left(a) => a.id,
            Either::Right(b) => b.auction,
        })
        .process(name, WinningBids { reserve })
}
