-- Only the few inactive people need an index (the planner looks them up to
-- notice leavers). An index on `active` itself gave every imported person an
-- entry, which a 100k-row import paid for and no query used for active = 1.
DROP INDEX staff_active;
CREATE INDEX staff_inactive ON staff (id) WHERE active = 0;
