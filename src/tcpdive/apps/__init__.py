"""Small servers and clients written on tcpdive's public API (asyncio streams on a simulated host).

They behave, on the wire and in netstat, like the programs the article ran: a Redis-protocol
server and client (with and without a connection pool), nginx-style HTTP/1.1 with
``keepalive_timeout``, a curl-like one-shot client, and a MySQL-like query client.
"""
