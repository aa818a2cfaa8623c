// A temporary directory for a test's files, removed with everything in it at the end.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

class TempDir {
public:
    TempDir() {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/tcpcan-test-XXXXXX";
        path_ = mkdtemp(pattern.data()) != nullptr ? pattern : std::string();
    }
    ~TempDir() {
        for (const std::string& file : files_) {
            ::unlink(file.c_str());
        }
        ::rmdir(path_.c_str());
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    // Writes `name` with `text` and permission bits `mode`; returns its path.
    std::string write(const std::string& name, const std::string& text, mode_t mode = 0600) {
        const std::string file = path_ + "/" + name;
        if (FILE* out = std::fopen(file.c_str(), "w")) {
            std::fputs(text.c_str(), out);
            std::fclose(out);
        }
        ::chmod(file.c_str(), mode);
        files_.push_back(file);
        return file;
    }

private:
    std::string path_;
    std::vector<std::string> files_;
};
