-- Issue 10: the transfer package marks each person handed over (`handed_over`) batch by batch.
-- The rows were written full-page by the inventory, so every mark was a new row version with
-- new entries in both indexes. With room left on each page the mark is a heap-only (HOT)
-- update — `handed_over` is in no index — which measured about three times cheaper per batch.
-- Only pages written from now on get the room; the data of earlier transfers is left as it is.
alter table transfer_persons set (fillfactor = 50);
