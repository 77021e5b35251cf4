// A Neo4j 5.26 Community server for the test suite and the benchmarks, without Docker.
//
// Run as a single-file Java program against the classpath of pom.xml (tests/neo4j_server.py does):
//   java -cp CLASSPATH Neo4jTestServer.java --store DIR --bolt-port N --http-port N --password-file FILE
//        [--page-cache-mb N] [--copy-from DIR]
//
// It starts Neo4j's official in-process server (neo4j-harness) on 127.0.0.1 only, with Bolt and HTTP
// (Neo4j Browser at /browser when neo4j-browser is on the classpath), authentication on, the user
// neo4j's password read from a file (so it never shows in the process list), LOAD CSV from files
// switched off as docker-compose.yml does, and the store in DIR (fresh for each test session).
// It prints one line "READY <bolt uri> <http uri>" once the server answers, and stops cleanly on
// SIGTERM or when its standard input closes (so a parent that dies does not leave it running).
// --copy-from DIR starts from a copy of another run's server folder (what the harness left under its
// --store after that process was killed): Neo4j recovers the copy from its transaction logs, as a
// production server does after a crash (bench/serve_bench.py's fault run on Neo4j).
// A failure to start prints "FAILED <reason>" and exits with status 1.

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilder;
import org.neo4j.harness.Neo4jBuilders;

public class Neo4jTestServer {
    public static void main(String[] args) {
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            options.put(args[i], args[i + 1]);
        }
        Neo4j neo4j;
        try {
            Path store = Path.of(require(options, "--store"));
            int bolt = Integer.parseInt(require(options, "--bolt-port"));
            int http = Integer.parseInt(require(options, "--http-port"));
            String password = Files.readString(Path.of(require(options, "--password-file"))).strip();
            // Neo4j's default page cache is half the machine's memory; a test store needs little.
            long pageCacheMb = Long.parseLong(options.getOrDefault("--page-cache-mb", "512"));
            Neo4jBuilder builder = Neo4jBuilders.newInProcessBuilder(store);
            if (options.containsKey("--copy-from")) {
                builder = builder.copyFrom(Path.of(options.get("--copy-from")));
            }
            neo4j = builder
                    .withConfig(BoltConnector.enabled, true)
                    .withConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", bolt))
                    .withConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", bolt))
                    .withConfig(HttpConnector.enabled, true)
                    .withConfig(HttpConnector.listen_address, new SocketAddress("127.0.0.1", http))
                    .withConfig(HttpConnector.advertised_address, new SocketAddress("127.0.0.1", http))
                    .withConfig(GraphDatabaseSettings.auth_enabled, true)
                    .withConfig(GraphDatabaseSettings.allow_file_urls, false)
                    .withConfig(GraphDatabaseSettings.pagecache_memory, pageCacheMb * 1024 * 1024)
                    .build();
            // The harness starts with the default user's initial password; set ours, no change required.
            // A copied store (--copy-from) already holds ours in its system database, and Neo4j refuses
            // to set a password to the one it has.
            if (!options.containsKey("--copy-from")) {
                neo4j.databaseManagementService().database("system").executeTransactionally(
                        "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
            }
        } catch (Throwable e) {
            Throwable root = e;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            System.out.println("FAILED " + e.getClass().getSimpleName() + ": " + e.getMessage()
                    + (root != e ? " (" + root.getClass().getSimpleName() + ": " + root.getMessage() + ")" : ""));
            System.out.flush();
            System.exit(1);
            return;
        }
        Neo4j server = neo4j;
        Runtime.getRuntime().addShutdownHook(new Thread(server::close));
        System.out.println("READY " + server.boltURI() + " " + server.httpURI());
        System.out.flush();
        try {
            InputStream in = System.in;
            while (in.read() != -1) {
                // the parent keeps standard input open while it needs the server
            }
        } catch (Exception ignored) {
            // a closed or broken pipe means the same: the parent is gone
        }
        System.exit(0);  // runs the shutdown hook: the server closes its store cleanly
    }

    private static String require(Map<String, String> options, String name) {
        String value = options.get(name);
        if (value == null) {
            throw new IllegalArgumentException("missing option " + name);
        }
        return value;
    }
}
