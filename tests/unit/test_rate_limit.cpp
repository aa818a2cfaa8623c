// TokenBucket: burst, average rate, refill after a quiet spell, time going backwards.
#include <doctest/doctest.h>

#include <tcpcan/rate_limit.hpp>

#include <cstdint>

using tcpcan::TokenBucket;

namespace {

// Frames that pass when `count` arrive at `now` (all at the same instant).
int take_at(TokenBucket& bucket, std::uint64_t now, int count) {
    int passed = 0;
    for (int i = 0; i < count; ++i) {
        passed += bucket.try_take(now) ? 1 : 0;
    }
    return passed;
}

}  // namespace

TEST_CASE("an unlimited bucket passes everything") {
    TokenBucket bucket;
    CHECK_FALSE(bucket.limited());
    CHECK(take_at(bucket, 0, 100000) == 100000);
}

TEST_CASE("a bucket starts full and passes exactly its burst at once") {
    TokenBucket bucket(100, 20);
    CHECK(bucket.limited());
    CHECK(take_at(bucket, 5'000'000, 50) == 20);
    CHECK_FALSE(bucket.try_take(5'000'000));
}

TEST_CASE("tokens come back at the configured rate") {
    TokenBucket bucket(100, 10);  // one token per 10 ms
    CHECK(take_at(bucket, 1'000'000, 10) == 10);
    CHECK_FALSE(bucket.try_take(1'009'999));  // 9.999 ms: not yet a whole token
    CHECK(bucket.try_take(1'010'000));
    CHECK_FALSE(bucket.try_take(1'010'000));
    // 45 ms later: 4.5 tokens, so 4 pass, and the half token is kept.
    CHECK(take_at(bucket, 1'055'000, 10) == 4);
    CHECK(take_at(bucket, 1'060'000, 10) == 1);
}

TEST_CASE("over a long run the average rate holds: burst + rate * T at most") {
    TokenBucket bucket(1000, 50);
    int passed = 0;
    // 10 s of offers, 10 frames every 1 ms (10,000 frames/s offered).
    for (std::uint64_t t = 0; t < 10'000'000; t += 1000) {
        passed += take_at(bucket, t, 10);
    }
    CHECK(passed <= 50 + 1000 * 10);
    CHECK(passed >= 1000 * 10 - 1000);  // and it does not starve either
}

TEST_CASE("a quiet spell refills only up to the burst, even after a very long time") {
    TokenBucket bucket(1'000'000, 5);
    CHECK(take_at(bucket, 0, 5) == 5);
    CHECK(take_at(bucket, UINT64_MAX / 2, 100) == 5);
    CHECK(take_at(bucket, UINT64_MAX, 100) == 5);
}

TEST_CASE("time going backwards adds nothing") {
    TokenBucket bucket(10, 1);
    CHECK(bucket.try_take(10'000'000));
    CHECK_FALSE(bucket.try_take(9'000'000));
    CHECK_FALSE(bucket.try_take(10'000'000));
    CHECK(bucket.try_take(10'100'000));
}

TEST_CASE("a zero burst is one frame") {
    TokenBucket bucket(1, 0);
    CHECK(take_at(bucket, 0, 3) == 1);
    CHECK(take_at(bucket, 1'000'000, 3) == 1);
}

TEST_CASE("a token bucket works at compile time") {
    constexpr bool ok = [] {
        TokenBucket bucket(2, 2);
        return bucket.try_take(0) && bucket.try_take(0) && !bucket.try_take(0) && bucket.try_take(500'000);
    }();
    static_assert(ok);
    CHECK(ok);
}
