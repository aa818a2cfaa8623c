// Runs a fuzz target over saved inputs without libFuzzer: every file in the directories
// given (and any file given directly), in name order. Any compiler builds it, so the
// ordinary test run replays the seed corpus and every saved crash (meson suite 'fuzz').
// Each input runs in a child process, so one crash does not hide the next: all failing
// inputs are listed, and the exit status is 1 if there was any.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <system_error>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        const fs::path path = argv[i];
        std::error_code error;
        if (fs::is_directory(path, error)) {
            for (const fs::directory_entry& entry : fs::directory_iterator(path)) {
                // Dot files (.gitkeep) keep empty folders in git; they are not inputs.
                if (entry.is_regular_file() && entry.path().filename().string().front() != '.') {
                    files.push_back(entry.path());
                }
            }
        } else if (fs::is_regular_file(path, error)) {
            files.push_back(path);
        } else {
            std::fprintf(stderr, "%s: no such file or directory\n", argv[i]);
            return 2;
        }
    }
    std::sort(files.begin(), files.end());
    std::vector<fs::path> failed;
    for (const fs::path& file : files) {
        std::ifstream in(file, std::ios::binary);
        const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (!in.good() && !in.eof()) {
            std::fprintf(stderr, "%s: cannot read\n", file.c_str());
            return 2;
        }
        std::fflush(nullptr);  // so the child does not print our buffered output again
        const pid_t child = fork();
        if (child == 0) {
            // An exactly sized copy, so a sanitizer build catches a read past the end as libFuzzer would.
            const std::unique_ptr<std::uint8_t[]> copy(new std::uint8_t[bytes.size()]);
            if (!bytes.empty()) {  // an empty file: bytes.data() may be null, which memcpy must not get
                std::memcpy(copy.get(), bytes.data(), bytes.size());
            }
            LLVMFuzzerTestOneInput(copy.get(), bytes.size());
            std::fflush(nullptr);
            _exit(0);
        }
        int status = 0;
        if (child < 0 || waitpid(child, &status, 0) != child) {
            std::perror("fork");
            return 2;
        }
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        std::printf("%s %s\n", ok ? "ok    " : "FAILED", file.c_str());
        if (!ok) {
            failed.push_back(file);
        }
    }
    std::printf("%zu inputs replayed, %zu failed\n", files.size(), failed.size());
    for (const fs::path& file : failed) {
        std::printf("failed: %s\n", file.c_str());
    }
    return failed.empty() ? 0 : 1;
}
