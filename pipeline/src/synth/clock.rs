//! Event times: a day's hours weighted like real traffic, with a few time zones.

use std::io::{self};

use super::encode::push_2;
use super::invalid;
use super::vocab::{pick_weighted, pick_weighted_pairs};
use chrono::{Datelike, NaiveDate};
use rand::Rng;
use rand::rngs::StdRng;

/// Timestamps on one UTC day, written in RFC 3339 with an occasional offset.
pub(super) struct Clock {
    /// `YYYY-MM-DD` for the day before, the day, and the day after.
    pub(super) days: [[u8; 10]; 3],
}

/// (UTC second of the day, offset in minutes east of UTC).
pub(super) type Stamp = (u32, i32);

/// Offsets (minutes) and weights: mostly `Z`.
pub(super) const OFFSETS: &[(i32, u32)] = &[(0, 82), (-300, 10), (120, 6), (330, 2)];
/// Activity by UTC hour: US business hours dominate.
pub(super) const HOUR_WEIGHTS: &[u32] = &[
    6, 5, 4, 3, 2, 2, 2, 2, 3, 4, 5, 6, 7, 9, 11, 13, 14, 14, 13, 12, 11, 10, 9, 7,
];

impl Clock {
    pub(super) fn new(date: NaiveDate) -> io::Result<Self> {
        let (Some(prev), Some(next)) = (date.pred_opt(), date.succ_opt()) else {
            return Err(invalid(format!("date {date} is out of range")));
        };
        if !(1..=9999).contains(&prev.year()) || !(1..=9999).contains(&next.year()) {
            return Err(invalid(format!(
                "date {date} must be within years 1..=9999"
            )));
        }
        let fmt = |d: NaiveDate| {
            let mut out = [0u8; 10];
            let y = d.year() as u32;
            let digits = [
                y / 1000,
                y / 100 % 10,
                y / 10 % 10,
                y % 10,
                10,
                d.month() / 10,
                d.month() % 10,
                10,
                d.day() / 10,
                d.day() % 10,
            ];
            for (o, v) in out.iter_mut().zip(digits) {
                *o = if v == 10 { b'-' } else { b'0' + v as u8 };
            }
            out
        };
        Ok(Clock {
            days: [fmt(prev), fmt(date), fmt(next)],
        })
    }

    pub(super) fn draw(&self, rng: &mut StdRng) -> Stamp {
        let hour = pick_weighted(rng, HOUR_WEIGHTS) as u32;
        let sec = hour * 3600 + rng.gen_range(0..3600);
        let offset = OFFSETS[pick_weighted_pairs(rng, OFFSETS)].0;
        (sec, offset)
    }

    pub(super) fn push(&self, buf: &mut Vec<u8>, (utc, offset): Stamp) {
        let local = i64::from(utc) + i64::from(offset) * 60;
        let day = (1 + local.div_euclid(86_400)) as usize;
        let s = local.rem_euclid(86_400) as u32;
        buf.extend_from_slice(&self.days[day.min(2)]);
        buf.push(b'T');
        push_2(buf, s / 3600);
        buf.push(b':');
        push_2(buf, s / 60 % 60);
        buf.push(b':');
        push_2(buf, s % 60);
        if offset == 0 {
            buf.push(b'Z');
        } else {
            buf.push(if offset < 0 { b'-' } else { b'+' });
            let m = offset.unsigned_abs();
            push_2(buf, m / 60);
            buf.push(b':');
            push_2(buf, m % 60);
        }
    }
}
