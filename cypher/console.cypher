// The Cypher console's own housekeeping (akg/readonly.py): finding and stopping console queries
// that ran past their time limit. Both servers (Neo4j 5, ArcadeDB) run these as written.

// name: console_transactions
// description: Running transactions with their query text (console queries carry an akg-console marker).
SHOW TRANSACTIONS YIELD transactionId, currentQuery RETURN transactionId, currentQuery

// name: console_terminate
// description: Stop transactions by id (console queries past their time limit).
// example: {"ids": ["neo4j-transaction-999999999"]}
TERMINATE TRANSACTIONS $ids
