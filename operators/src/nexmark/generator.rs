//! The event generator: event number `n` in, event out, as a pure function of the
//! configuration and `n`, so any subset of the sequence can be generated anywhere.

use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

use super::config::*;
use super::event::{Auction, Bid, Event, Millis, Person};

const FIRST_NAMES: [&str; 11] = [
    "peter", "paul", "luke", "john", "saul", "vicky", "kate", "julie", "sarah", "deiter", "walter",
];
const LAST_NAMES: [&str; 9] = [
    "shultz", "abrams", "spencer", "white", "bartels", "walton", "smith", "jones", "noris",
];
const CITIES: [&str; 10] = [
    "phoenix",
    "los angeles",
    "san francisco",
    "boise",
    "portland",
    "bend",
    "redmond",
    "seattle",
    "kent",
    "cheyenne",
];
const STATES: [&str; 6] = ["az", "ca", "id", "or", "wa", "wy"];
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
/// Cold channels: `channel-0` … `channel-9999`, each with its own url.
const COLD_CHANNELS: usize = 10_000;

/// The channels and their urls: the four hot ones first, then the cold ones.
fn channel_table() -> &'static [(String, String)] {
    static TABLE: OnceLock<Vec<(String, String)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: Vec<(String, String)> = HOT_CHANNELS
            .iter()
            .enumerate()
            .map(|(i, c)| (c.to_string(), base_url(i as u64)))
            .collect();
        for i in 0..COLD_CHANNELS as u64 {
            let mut url = base_url(i);
            // As the reference does, nine in ten cold urls carry a channel id.
            if SmallRng::seed_from_u64(i).random_range(0..10) > 0 {
                let id = (i as i32).reverse_bits().unsigned_abs();
                let _ = write!(url, "&channel_id={id}");
            }
            table.push((format!("channel-{i}"), url));
        }
        table
    })
}

/// `https://www.nexmark.com/aaa/bbbb/ccc/item.htm?query=1`: three segments of 3–4 characters,
/// each a letter or, one time in 13, an underscore.
fn base_url(seed: u64) -> String {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut url = String::from("https://www.nexmark.com");
    for _ in 0..3 {
        url.push('/');
        for _ in 0..rng.random_range(3..5) {
            if rng.random_range(0..13) == 0 {
                url.push('_');
            } else {
                url.push(rng.random_range(b'a'..=b'z') as char);
            }
        }
    }
    url.push_str("/item.htm?query=1");
    url
}

/// Generates Nexmark events by number; cheap to clone (the channel table is shared).
///
/// ```
/// use rheo_operators::nexmark::{Event, EventGenerator, NexmarkConfig};
///
/// let generator = EventGenerator::new(NexmarkConfig::default())?;
/// let first: Vec<Event> = (0..50).map(|n| generator.event(n)).collect();
/// assert!(matches!(first[0], Event::Person(_)));
/// assert!(first[1..4].iter().all(|e| matches!(e, Event::Auction(_))));
/// assert!(first[4..].iter().all(|e| matches!(e, Event::Bid(_))));
/// // The same number always gives the same event.
/// assert_eq!(generator.event(7), first[7]);
/// # Ok::<(), rheo_operators::nexmark::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EventGenerator {
    config: Arc<NexmarkConfig>,
    channels: &'static [(String, String)],
    /// Events in the time it takes `in_flight_auctions` auctions to open: sets auction length.
    events_for_auctions: u64,
}

impl EventGenerator {
    /// A generator for `config`, once its fields are checked.
    pub fn new(config: NexmarkConfig) -> Result<EventGenerator, ConfigError> {
        config.validate()?;
        let events_for_auctions =
            config.in_flight_auctions * PROPORTION_DENOMINATOR / AUCTION_PROPORTION;
        Ok(EventGenerator {
            config: Arc::new(config),
            channels: channel_table(),
            events_for_auctions,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NexmarkConfig {
        &self.config
    }

    /// Event time of event `n`.
    pub fn timestamp(&self, n: u64) -> Millis {
        self.config.timestamp(n)
    }

    /// Event number `n`.
    pub fn event(&self, n: u64) -> Event {
        let mut rng = SmallRng::seed_from_u64(
            n.wrapping_add(self.config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        );
        let rem = n % PROPORTION_DENOMINATOR;
        if rem < PERSON_PROPORTION {
            Event::Person(self.person(n, &mut rng))
        } else if rem < PERSON_PROPORTION + AUCTION_PROPORTION {
            Event::Auction(self.auction(n, &mut rng))
        } else {
            Event::Bid(self.bid(n, &mut rng))
        }
    }

    /// Events `start, start + step, …` below `end`.
    pub fn events(&self, start: u64, end: u64, step: u64) -> impl Iterator<Item = Event> + '_ {
        (start..end)
            .step_by(step.max(1) as usize)
            .map(|n| self.event(n))
    }

    fn person(&self, n: u64, rng: &mut SmallRng) -> Person {
        let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        let name = format!("{first} {last}");
        let mut email = Vec::with_capacity(17);
        letters(rng, 7, &mut email);
        email.push(b'@');
        letters(rng, 5, &mut email);
        email.extend_from_slice(b".com");
        let email_address = ascii(email);
        let mut credit_card = String::with_capacity(19);
        for i in 0..4 {
            if i > 0 {
                credit_card.push(' ');
            }
            let _ = write!(credit_card, "{:04}", rng.random_range(0..10_000u32));
        }
        let city = CITIES[rng.random_range(0..CITIES.len())].to_owned();
        let state = STATES[rng.random_range(0..STATES.len())].to_owned();
        let size = 8 + name.len() + email_address.len() + credit_card.len() + city.len() + 2;
        let extra = extra(rng, size as u64, self.config.avg_person_bytes);
        Person {
            id: FIRST_PERSON_ID + last_person(n),
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time: self.timestamp(n),
            extra,
        }
    }

    fn auction(&self, n: u64, rng: &mut SmallRng) -> Auction {
        let c = &*self.config;
        let item_name = letter_string(rng, 20);
        let description = letter_string(rng, 100);
        let initial_bid = price(rng);
        let reserve = initial_bid + price(rng);
        let date_time = self.timestamp(n);
        let horizon = self.timestamp(n + self.events_for_auctions) - date_time;
        let expires = date_time + 1 + rng.random_range(0..(2 * horizon).max(1));
        let seller = if rng.random_range(0..c.hot_seller_ratio) > 0 {
            last_person(n) / HOT_BLOCK * HOT_BLOCK
        } else {
            self.next_person(n, rng)
        };
        let category = FIRST_CATEGORY_ID + rng.random_range(0..c.num_categories);
        let extra = extra(rng, 8 + 20 + 100 + 40, c.avg_auction_bytes);
        let epoch = n / PROPORTION_DENOMINATOR;
        let offset = n % PROPORTION_DENOMINATOR - PERSON_PROPORTION;
        Auction {
            id: FIRST_AUCTION_ID + epoch * AUCTION_PROPORTION + offset,
            item_name,
            description,
            initial_bid,
            reserve,
            date_time,
            expires,
            seller: FIRST_PERSON_ID + seller,
            category,
            extra,
        }
    }

    fn bid(&self, n: u64, rng: &mut SmallRng) -> Bid {
        let c = &*self.config;
        // The newest auction at a bid: the last of its 50-event block.
        let last_auction = n / PROPORTION_DENOMINATOR * AUCTION_PROPORTION + AUCTION_PROPORTION - 1;
        let auction = if rng.random_range(0..c.hot_auction_ratio) > 0 {
            last_auction / HOT_BLOCK * HOT_BLOCK
        } else {
            let min = last_auction.saturating_sub(c.in_flight_auctions);
            min + rng.random_range(0..last_auction - min + 1 + AUCTION_ID_LEAD)
        };
        let bidder = if rng.random_range(0..c.hot_bidder_ratio) > 0 {
            last_person(n) / HOT_BLOCK * HOT_BLOCK + 1
        } else {
            self.next_person(n, rng)
        };
        let price = price(rng);
        let index = if rng.random_range(0..c.hot_channel_ratio) > 0 {
            rng.random_range(0..HOT_CHANNELS.len())
        } else {
            HOT_CHANNELS.len() + rng.random_range(0..COLD_CHANNELS)
        };
        let (channel, url) = self.channels[index].clone();
        let extra = extra(rng, 32, c.avg_bid_bytes);
        Bid {
            auction: FIRST_AUCTION_ID + auction,
            bidder: FIRST_PERSON_ID + bidder,
            price,
            channel,
            url,
            date_time: self.timestamp(n),
            extra,
        }
    }

    /// A person among the newest `active_people`, or up to [`PERSON_ID_LEAD`] not yet created.
    fn next_person(&self, n: u64, rng: &mut SmallRng) -> u64 {
        let people = last_person(n) + 1;
        let active = people.min(self.config.active_people);
        people - active + rng.random_range(0..active + PERSON_ID_LEAD)
    }
}

/// The newest person at event `n` (base 0).
fn last_person(n: u64) -> u64 {
    n / PROPORTION_DENOMINATOR
}

/// Log-uniform over [1 $, 1 000 000 $), in cents.
fn price(rng: &mut SmallRng) -> u64 {
    (10f64.powf(rng.random::<f64>() * 6.0) * 100.0).round() as u64
}

/// Appends `count` uniform letters a–z, four per 64 random bits.
fn letters(rng: &mut SmallRng, count: usize, out: &mut Vec<u8>) {
    out.reserve(count);
    let mut left = count;
    while left > 0 {
        let mut bits = rng.next_u64();
        for _ in 0..left.min(4) {
            // 16 bits scaled to 0..26: bias below 26 / 65 536.
            out.push(b'a' + (((bits & 0xffff) * 26) >> 16) as u8);
            bits >>= 16;
        }
        left = left.saturating_sub(4);
    }
}

/// ASCII bytes as a `String`.
fn ascii(bytes: Vec<u8>) -> String {
    // Only letters and ASCII punctuation are ever pushed, so this never falls back.
    String::from_utf8(bytes).unwrap_or_default()
}

/// `count` uniform letters a–z.
fn letter_string(rng: &mut SmallRng, count: usize) -> String {
    let mut bytes = Vec::with_capacity(count);
    letters(rng, count, &mut bytes);
    ascii(bytes)
}

/// Padding that brings a record of `size` bytes to `avg` on average: uniform length around
/// `avg - size`, ±20 %.
fn extra(rng: &mut SmallRng, size: u64, avg: u64) -> String {
    if size > avg {
        return String::new();
    }
    let d = avg - size;
    let delta = (d + 2) / 5;
    let len = d - delta
        + if delta == 0 {
            0
        } else {
            rng.random_range(0..2 * delta)
        };
    letter_string(rng, len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_reference_rules() {
        let g = EventGenerator::new(NexmarkConfig::default()).unwrap();
        let Event::Person(p) = g.event(150) else {
            panic!("event 150 is a person")
        };
        assert_eq!(p.id, 1003);
        let Event::Auction(a) = g.event(152) else {
            panic!("event 152 is an auction")
        };
        assert_eq!(a.id, 1000 + 3 * 3 + 1);
        assert!(a.reserve > a.initial_bid);
        assert!((10..15).contains(&a.category));
        assert_eq!(g.timestamp(15), 1_600_000_000_002);
    }

    #[test]
    fn urls_have_three_short_segments() {
        let url = base_url(7);
        let path = url
            .strip_prefix("https://www.nexmark.com/")
            .and_then(|u| u.strip_suffix("/item.htm?query=1"))
            .unwrap();
        let segments: Vec<&str> = path.split('/').collect();
        assert_eq!(segments.len(), 3);
        assert!(segments.iter().all(|s| (3..=4).contains(&s.len())));
        assert_eq!(channel_table().len(), 4 + COLD_CHANNELS);
    }

    #[test]
    fn a_zero_rate_is_rejected_by_name() {
        let config = NexmarkConfig {
            first_event_rate: 0,
            ..NexmarkConfig::default()
        };
        let err = EventGenerator::new(config).unwrap_err();
        assert_eq!(err.field, "first_event_rate");
    }
}
