-- Issue 13: a request whose answer could not be emailed (refused for good, or not accepted
-- within the bounded retry) says so, instead of staying "executing" for ever.
alter table data_requests drop constraint data_requests_status_check;
alter table data_requests add constraint data_requests_status_check
  check (status in ('received', 'awaiting_decision', 'executing', 'answered', 'refused', 'delivery_failed'));
