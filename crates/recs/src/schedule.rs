//! When the nightly batch runs: a cron-style `minute hour * * *` read in a time zone. The
//! zone is UTC, a fixed offset (`+09:00`) or one of the zones without daylight saving
//! time named here; a zone with daylight saving time is refused at start rather than
//! silently run an hour off.

use time::UtcOffset;

/// Zones without daylight saving time, by name.
const ZONES: &[(&str, i8, i8)] = &[
    ("UTC", 0, 0),
    ("Etc/UTC", 0, 0),
    ("Asia/Tokyo", 9, 0),
    ("Asia/Seoul", 9, 0),
    ("Asia/Shanghai", 8, 0),
    ("Asia/Taipei", 8, 0),
    ("Asia/Hong_Kong", 8, 0),
    ("Asia/Singapore", 8, 0),
    ("Asia/Kolkata", 5, 30),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// `None` is every minute (hour).
    minute: Option<u8>,
    hour: Option<u8>,
    offset: UtcOffset,
}

const MINUTE_MS: i64 = 60_000;

impl Schedule {
    pub fn parse(cron: &str, zone: &str) -> anyhow::Result<Self> {
        let fields: Vec<&str> = cron.split_whitespace().collect();
        let [minute, hour, "*", "*", "*"] = fields[..] else {
            anyhow::bail!("recs.schedule {cron:?}: expected `minute hour * * *`");
        };
        let field = |text: &str, most: u8, name: &str| -> anyhow::Result<Option<u8>> {
            if text == "*" {
                return Ok(None);
            }
            match text.parse::<u8>() {
                Ok(n) if n <= most => Ok(Some(n)),
                _ => anyhow::bail!("recs.schedule {cron:?}: the {name} must be * or 0–{most}"),
            }
        };
        Ok(Self {
            minute: field(minute, 59, "minute")?,
            hour: field(hour, 23, "hour")?,
            offset: parse_zone(zone)?,
        })
    }

    /// The first whole minute after `now` (ms since the epoch) the schedule names.
    pub fn next_after(&self, now: i64) -> i64 {
        let offset_ms = i64::from(self.offset.whole_seconds()) * 1_000;
        let mut at = (now.div_euclid(MINUTE_MS) + 1) * MINUTE_MS;
        for _ in 0..=(24 * 60) {
            let local_minutes = (at + offset_ms).div_euclid(MINUTE_MS).rem_euclid(24 * 60);
            let (hour, minute) = (local_minutes / 60, local_minutes % 60);
            if self.hour.is_none_or(|h| i64::from(h) == hour)
                && self.minute.is_none_or(|m| i64::from(m) == minute)
            {
                return at;
            }
            at += MINUTE_MS;
        }
        at
    }
}

fn parse_zone(zone: &str) -> anyhow::Result<UtcOffset> {
    if let Some((_, hours, minutes)) = ZONES.iter().find(|(name, _, _)| *name == zone) {
        return Ok(UtcOffset::from_hms(*hours, *minutes, 0)?);
    }
    let sign = match zone.chars().next() {
        Some('+') => 1,
        Some('-') => -1,
        _ => anyhow::bail!(
            "recs.timezone {zone:?}: give UTC, an offset such as +09:00, or one of {}",
            ZONES.iter().map(|z| z.0).collect::<Vec<_>>().join(", ")
        ),
    };
    let (hours, minutes) = zone[1..]
        .split_once(':')
        .and_then(|(h, m)| Some((h.parse::<i8>().ok()?, m.parse::<i8>().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("recs.timezone {zone:?}: an offset is ±HH:MM"))?;
    Ok(UtcOffset::from_hms(sign * hours, sign * minutes, 0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_in_the_morning_in_tokyo_is_five_in_the_afternoon_utc() {
        let schedule = Schedule::parse("0 2 * * *", "Asia/Tokyo").unwrap_or_else(|e| panic!("{e}"));
        // 2026-01-01T00:00:00Z
        let midnight = 1_767_225_600_000;
        assert_eq!(schedule.next_after(midnight), midnight + 17 * 3_600_000);
        let offset = Schedule::parse("30 * * * *", "+05:30").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(offset.next_after(midnight), midnight + 60 * 60_000);
    }

    #[test]
    fn bad_schedules_and_zones_are_refused() {
        assert!(Schedule::parse("0 2 * * 1", "UTC").is_err());
        assert!(Schedule::parse("61 2 * * *", "UTC").is_err());
        assert!(Schedule::parse("0 2 * * *", "Europe/Paris").is_err());
        assert!(Schedule::parse("0 2 * * *", "-03:00").is_ok());
    }
}
