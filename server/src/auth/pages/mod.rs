//! HTML pages (filled in below).
