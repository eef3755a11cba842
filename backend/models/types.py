"""Column types the tables share."""
from sqlalchemy import BigInteger, Integer

# 64 bits on both databases. SQLite's INTEGER is 64-bit already, and must stay INTEGER for a rowid
# primary key; PostgreSQL's integer is 32-bit, and ids, exit codes and counts the API and the agent
# protocol accept (up to 2**62) would overflow it: there the columns are bigint (migration 0007).
Int64 = BigInteger().with_variant(Integer, "sqlite")
