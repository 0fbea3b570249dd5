//! The gateway's side of the hold store (inside `markgate serve`): notices decisions made by
//! the command line or the admin page, and does what follows each exactly once.
