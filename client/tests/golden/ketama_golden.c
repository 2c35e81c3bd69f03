/*
 * Golden vectors for ferrocache-client's ketama ring, taken from libmemcached itself.
 *
 * Prints, for 10,000 keys, the index of the server libmemcached's weighted ketama picks under
 * several server lists and weights. tests/ketama_golden.rs builds and runs this program and
 * compares its output byte for byte with ketama_golden.txt (committed beside it), and checks
 * the Rust ring against that file key by key.
 *
 * Build: cc -O2 -o ketama_golden ketama_golden.c -lmemcached
 *
 * The behaviour is MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, the one PHP memcached, pylibmc and
 * twemproxy's `hash: md5` agree with. The program checks (and prints) what that behaviour
 * switches on, so a libmemcached that meant something else by it fails here instead of
 * producing vectors for a different algorithm.
 */
#include <libmemcached/memcached.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct server {
    const char *host;
    in_port_t port;
    uint32_t weight;
};

struct config {
    const char *name;
    const struct server *servers;
    size_t count;
};

/* Port 11211 is left out of a server's identity on the ring: lists mix both cases. */
static const struct server three_local[] = {
    {"127.0.0.1", 11211, 1}, {"127.0.0.1", 11212, 1}, {"127.0.0.1", 11213, 1}};
static const struct server five_equal[] = {
    {"10.0.0.1", 11211, 1}, {"10.0.0.2", 11211, 1}, {"10.0.0.3", 11211, 1},
    {"10.0.0.4", 11211, 1}, {"10.0.0.5", 11211, 1}};
/* five_equal without its third server: about 1/5 of the keys move. */
static const struct server four_of_five[] = {
    {"10.0.0.1", 11211, 1}, {"10.0.0.2", 11211, 1}, {"10.0.0.4", 11211, 1},
    {"10.0.0.5", 11211, 1}};
static const struct server weighted_mixed[] = {
    {"10.0.1.1", 11211, 1}, {"10.0.1.2", 11212, 2}, {"10.0.1.3", 22122, 3},
    {"cache-4.example", 11211, 5}};
static const struct server heavy_and_light[] = {
    {"192.168.7.10", 11211, 100}, {"192.168.7.11", 11211, 1}};
static const struct server ten_uneven[] = {
    {"cache-0", 11211, 3}, {"cache-1", 11212, 1}, {"cache-2", 11211, 7},
    {"cache-3", 11213, 2}, {"cache-4", 11211, 1}, {"cache-5", 20000, 4},
    {"cache-6", 11211, 1}, {"cache-7", 11214, 9}, {"cache-8", 11211, 2},
    {"cache-9", 11211, 1}};

#define CONFIG(name) {#name, name, sizeof(name) / sizeof(name[0])}
static const struct config configs[] = {
    CONFIG(three_local), CONFIG(five_equal),      CONFIG(four_of_five),
    CONFIG(weighted_mixed), CONFIG(heavy_and_light), CONFIG(ten_uneven)};
#define CONFIG_COUNT (sizeof(configs) / sizeof(configs[0]))
#define KEY_COUNT 10000

static void die(const char *what) {
    fprintf(stderr, "ketama_golden: %s\n", what);
    exit(1);
}

/* Keys of several shapes, including the bench's W4 format. */
static int make_key(unsigned i, char *buf, size_t size) {
    switch (i % 4) {
    case 0: return snprintf(buf, size, "key:%u", i);
    case 1: return snprintf(buf, size, "key:0000000000000000000000:%u", i);
    case 2: return snprintf(buf, size, "user/%u/profile", i);
    default: return snprintf(buf, size, "%08x", (uint32_t)(i * 2654435761u));
    }
}

static memcached_st *make_client(const struct config *config) {
    memcached_st *memc = memcached_create(NULL);
    if (memc == NULL) die("memcached_create failed");
    if (memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1) != MEMCACHED_SUCCESS)
        die("cannot set MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED");
    /* What the weighted behaviour must mean for the vectors to be the documented algorithm:
     * a ketama continuum, md5 for both the keys and the ring points. libmemcached 1.1 names
     * the distribution CONSISTENT_WEIGHTED (1.0 said CONSISTENT_KETAMA plus a weighted flag);
     * both build the same weighted continuum. */
    uint64_t distribution = memcached_behavior_get(memc, MEMCACHED_BEHAVIOR_DISTRIBUTION);
    if (distribution != MEMCACHED_DISTRIBUTION_CONSISTENT_WEIGHTED &&
        distribution != MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA)
        die("KETAMA_WEIGHTED did not select a ketama distribution");
    if (memcached_behavior_get(memc, MEMCACHED_BEHAVIOR_HASH) != MEMCACHED_HASH_MD5)
        die("KETAMA_WEIGHTED did not select md5 as the key hash");
    if (memcached_behavior_get(memc, MEMCACHED_BEHAVIOR_KETAMA_HASH) != MEMCACHED_HASH_MD5)
        die("KETAMA_WEIGHTED did not select md5 as the ring hash");
    if (memcached_behavior_get(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED) != 1)
        die("KETAMA_WEIGHTED did not stick");
    for (size_t s = 0; s < config->count; s++) {
        const struct server *server = &config->servers[s];
        if (memcached_server_add_with_weight(memc, server->host, server->port, server->weight) !=
            MEMCACHED_SUCCESS)
            die("memcached_server_add_with_weight failed");
    }
    if (memcached_server_count(memc) != config->count) die("server count mismatch");
    return memc;
}

int main(void) {
    memcached_st *clients[CONFIG_COUNT];
    printf("# ketama golden vectors from libmemcached %s (tests/golden/ketama_golden.c)\n",
           LIBMEMCACHED_VERSION_STRING);
    printf("# behaviour: MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED=1 (weighted ketama continuum, "
           "key hash md5, ketama hash md5)\n");
    printf("# config <name> <host:port:weight>... ; then one line per key: <key> and, per "
           "config, the index of its server\n");
    for (size_t c = 0; c < CONFIG_COUNT; c++) {
        clients[c] = make_client(&configs[c]);
        printf("config %s", configs[c].name);
        for (size_t s = 0; s < configs[c].count; s++) {
            const struct server *server = &configs[c].servers[s];
            printf(" %s:%u:%u", server->host, (unsigned)server->port, server->weight);
        }
        printf("\n");
    }
    char key[64];
    for (unsigned i = 0; i < KEY_COUNT; i++) {
        int len = make_key(i, key, sizeof key);
        printf("%s", key);
        for (size_t c = 0; c < CONFIG_COUNT; c++) {
            printf(" %u", memcached_generate_hash(clients[c], key, (size_t)len));
        }
        printf("\n");
    }
    for (size_t c = 0; c < CONFIG_COUNT; c++) memcached_free(clients[c]);
    return 0;
}
