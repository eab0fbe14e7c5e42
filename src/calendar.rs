//! Civil-calendar arithmetic on microsecond timestamps (proleptic Gregorian, no time zone).

/// Microseconds in one day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Microseconds in one hour.
pub const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// Days since 1970-01-01 of the civil date `year-month-day` (H. Hinnant's algorithm).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number since 1970-01-01.
pub fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

/// Whether `year` is a leap year.
pub fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in `month` of `year`.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Day number (since 1970-01-01) of a microsecond timestamp.
pub fn day_of(micros: i64) -> i32 {
    micros.div_euclid(MICROS_PER_DAY) as i32
}

/// Hour of day (0-23) of a microsecond timestamp.
pub fn hour_of(micros: i64) -> u32 {
    (micros.rem_euclid(MICROS_PER_DAY) / MICROS_PER_HOUR) as u32
}

/// ISO weekday (1 = Monday ... 7 = Sunday) of a day number.
pub fn iso_weekday(days: i32) -> u32 {
    // 1970-01-01 was a Thursday (ISO 4).
    ((days + 3).rem_euclid(7) + 1) as u32
}

/// Month index `year * 12 + (month - 1)` of a day number, for partitioning by month.
pub fn month_index(days: i32) -> i32 {
    let (year, month, _) = civil_from_days(days);
    year * 12 + month as i32 - 1
}

/// `YYYY-MM` label of a month index.
pub fn month_label(index: i32) -> String {
    format!("{:04}-{:02}", index.div_euclid(12), index.rem_euclid(12) + 1)
}

/// `YYYY-MM-DD` label of a day number.
pub fn date_label(days: i32) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_dates() {
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(date_label(days_from_civil(2015, 11, 1)), "2015-11-01");
    }

    #[test]
    fn weekdays_and_months() {
        assert_eq!(iso_weekday(days_from_civil(2015, 11, 1)), 7); // a Sunday
        assert_eq!(iso_weekday(days_from_civil(2017, 6, 30)), 5); // a Friday
        assert_eq!(month_label(month_index(days_from_civil(2016, 2, 29))), "2016-02");
        assert_eq!(days_in_month(2016, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(hour_of(-1), 23);
        assert_eq!(day_of(-1), -1);
    }
}
