"""users: profile, per-user statistics, account deletion across every domain."""
