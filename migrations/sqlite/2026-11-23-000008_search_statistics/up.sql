-- PostgreSQL-only planner statistics: nothing to do on SQLite (this keeps both migration trees in step).
SELECT 1;
