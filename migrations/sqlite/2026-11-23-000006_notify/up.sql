-- SQLite deployments are a single instance: nothing to notify (this keeps both migration trees in step).
SELECT 1;
