-- Finer statistics on the words of messages, so that the planner knows a rare word is rare (and
-- reads its few matches through the text index) and a common one is common (and walks the newest
-- messages until it has a page). With the default, a word it has not sampled is estimated at half
-- the frequency of the least common word it tracks, which in a large history is far too common.
ALTER INDEX messages_search ALTER COLUMN 1 SET STATISTICS 1000;
ANALYZE messages;
