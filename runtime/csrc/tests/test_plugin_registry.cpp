// The plugin's registration convention, on the CPU, against TensorRT's own headers.
//
//   sllen_plugin_registry_test <static plugin library> <dynamic plugin library>
//
// This executable defines getPluginRegistry() (NvInferRuntime.h: extern "C", the symbol
// libnvinfer exports) and exports it, so the two plugin libraries - built for this test without
// libnvinfer - resolve it here when they are dlopen'ed. The stub registry follows the header's
// documented semantics (NvInferRuntimeCommon.h, IPluginRegistry): registerCreator(creator,
// pluginNamespace) files the creator under that namespace and "returns false if a plugin creator
// with the same type is already registered"; getCreator(name, version, namespace) looks it up.
// TensorRT's ONNX parser asks getCreator(op_type, plugin_version, plugin_namespace)
// (onnx-tensorrt FallbackPluginImporter) and passes the node's INT attributes as kINT32 and
// FLOAT attributes as kFLOAT32 fields named after the creator's getFieldNames() (loadFields).
//
// Checks:
// - static library: loading it registers exactly one creator, under ("SllenAttention", "1",
//   "sllen"), the triple sllen's ONNX node carries; nothing under the empty namespace (where
//   REGISTER_TENSORRT_PLUGIN would have put it: the "Plugin not found" of NVIDIA/TensorRT#955);
//   the creator builds a plugin from parser-style fields, whose serialized fields build the
//   runtime plugin again; bad attributes are refused;
// - dynamic library: loading it registers nothing; it exports getCreators() and
//   setLoggerFinder() with the signatures of samples/trtexec/README.md; getCreators() gives the
//   same creator triple; after setLoggerFinder() the plugin's errors reach TensorRT's logger.
// What this cannot show: that a real libnvinfer files the creators of getCreators() under
// getPluginNamespace() (the headers do not say; scripts/trt-check.sh checks it on a real
// TensorRT), and anything the kernel does (no GPU here: enqueue is never called).
#include <dlfcn.h>

#include <NvInferRuntime.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

int g_failures = 0;

void check(bool ok, const std::string& what) {
    std::printf("%s  %s\n", ok ? "PASS" : "FAIL", what.c_str());
    if (!ok) ++g_failures;
}

using nvinfer1::AsciiChar;
using nvinfer1::IPluginCreatorInterface;
using nvinfer1::IPluginCreatorV3One;

IPluginCreatorV3One* as_v3(IPluginCreatorInterface* c) {
    if (c == nullptr) return nullptr;
    return std::strcmp(c->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0
               ? static_cast<IPluginCreatorV3One*>(c)
               : nullptr;
}

struct Entry {
    std::string name, version, ns;
    IPluginCreatorInterface* creator;
};

class StubRegistry final : public nvinfer1::IPluginRegistry {
public:
    std::vector<Entry> entries;

    bool registerCreator(IPluginCreatorInterface& creator,
                         AsciiChar const* const pluginNamespace) noexcept override {
        IPluginCreatorV3One* v3 = as_v3(&creator);
        if (v3 == nullptr || pluginNamespace == nullptr) return false;
        Entry e{v3->getPluginName(), v3->getPluginVersion(), pluginNamespace, &creator};
        for (const Entry& o : entries) {
            if (o.name == e.name && o.version == e.version && o.ns == e.ns) return false;
        }
        entries.push_back(e);
        return true;
    }
    IPluginCreatorInterface* getCreator(AsciiChar const* const name, AsciiChar const* const version,
                                        AsciiChar const* const ns) noexcept override {
        for (const Entry& e : entries) {
            if (e.name == name && e.version == version && e.ns == (ns ? ns : "")) return e.creator;
        }
        return nullptr;
    }
    IPluginCreatorInterface* const* getAllCreators(int32_t* const n) const noexcept override {
        all_.clear();
        for (const Entry& e : entries) all_.push_back(e.creator);
        *n = static_cast<int32_t>(all_.size());
        return all_.empty() ? nullptr : all_.data();
    }
    bool deregisterCreator(IPluginCreatorInterface const& creator) noexcept override {
        for (auto it = entries.begin(); it != entries.end(); ++it) {
            if (it->creator == &creator) {
                entries.erase(it);
                return true;
            }
        }
        return false;
    }
    void setErrorRecorder(nvinfer1::IErrorRecorder* const) noexcept override {}
    nvinfer1::IErrorRecorder* getErrorRecorder() const noexcept override { return nullptr; }
    bool isParentSearchEnabled() const override { return false; }
    void setParentSearchEnabled(bool const) override {}
    PluginLibraryHandle loadLibrary(AsciiChar const*) noexcept override { return nullptr; }
    void deregisterLibrary(PluginLibraryHandle) noexcept override {}
    nvinfer1::IPluginResource* acquirePluginResource(AsciiChar const*,
                                                     nvinfer1::IPluginResource*) noexcept override {
        return nullptr;
    }
    int32_t releasePluginResource(AsciiChar const*) noexcept override { return -1; }
#if NV_TENSORRT_MAJOR < 11
    // The IPluginV2 overloads, deprecated in 10.x and removed in 11.x.
    bool registerCreator(nvinfer1::IPluginCreator&, AsciiChar const* const) noexcept override {
        return false;
    }
    nvinfer1::IPluginCreator* const* getPluginCreatorList(int32_t* const n) const noexcept override {
        *n = 0;
        return nullptr;
    }
    nvinfer1::IPluginCreator* getPluginCreator(AsciiChar const* const, AsciiChar const* const,
                                               AsciiChar const* const) noexcept override {
        return nullptr;
    }
    bool deregisterCreator(nvinfer1::IPluginCreator const&) noexcept override { return false; }
#else
    IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const n) noexcept override {
        return getAllCreators(n);
    }
#endif

private:
    mutable std::vector<IPluginCreatorInterface*> all_;
};

StubRegistry g_registry;

class RecordingLogger final : public nvinfer1::ILogger {
public:
    std::vector<std::string> messages;
    void log(Severity, AsciiChar const* msg) noexcept override { messages.emplace_back(msg); }
};

class Finder final : public nvinfer1::ILoggerFinder {
public:
    RecordingLogger logger;
    nvinfer1::ILogger* findLogger() override { return &logger; }
};

// The fields TensorRT's ONNX parser builds from sllen's node (loadFields): one per name in the
// creator's getFieldNames() that the node has, INT as kINT32, FLOAT as kFLOAT32.
struct ParserFields {
    int32_t num_heads, head_dim;
    float scale;
    std::vector<nvinfer1::PluginField> fields;
    nvinfer1::PluginFieldCollection fc{};

    ParserFields(IPluginCreatorV3One& creator, int32_t heads, int32_t dim, float s)
        : num_heads(heads), head_dim(dim), scale(s) {
        const nvinfer1::PluginFieldCollection* names = creator.getFieldNames();
        for (int32_t i = 0; names != nullptr && i < names->nbFields; ++i) {
            const char* n = names->fields[i].name;
            if (std::strcmp(n, "num_heads") == 0) {
                fields.emplace_back(n, &num_heads, nvinfer1::PluginFieldType::kINT32, 1);
            } else if (std::strcmp(n, "head_dim") == 0) {
                fields.emplace_back(n, &head_dim, nvinfer1::PluginFieldType::kINT32, 1);
            } else if (std::strcmp(n, "scale") == 0) {
                fields.emplace_back(n, &scale, nvinfer1::PluginFieldType::kFLOAT32, 1);
            }
        }
        fc.nbFields = static_cast<int32_t>(fields.size());
        fc.fields = fields.data();
    }
};

bool names_match(IPluginCreatorV3One* c) {
    return c != nullptr && std::strcmp(c->getPluginName(), "SllenAttention") == 0 &&
           std::strcmp(c->getPluginVersion(), "1") == 0 &&
           std::strcmp(c->getPluginNamespace(), "sllen") == 0;
}

void check_creator(IPluginCreatorV3One* creator, const char* which) {
    const std::string tag = std::string(which) + ": ";
    ParserFields good(*creator, 2, 64, 1.f);
    check(good.fc.nbFields == 3, tag + "getFieldNames() names num_heads, head_dim and scale");
    nvinfer1::IPluginV3* plugin =
        creator->createPlugin("/hsbab/SllenAttention", &good.fc, nvinfer1::TensorRTPhase::kBUILD);
    check(plugin != nullptr, tag + "createPlugin(kBUILD) from the parser's kINT32/kFLOAT32 fields");
    if (plugin == nullptr) return;
    auto* core = static_cast<nvinfer1::IPluginV3OneCore*>(
        plugin->getCapabilityInterface(nvinfer1::PluginCapabilityType::kCORE));
    auto* build = static_cast<nvinfer1::IPluginV3OneBuild*>(
        plugin->getCapabilityInterface(nvinfer1::PluginCapabilityType::kBUILD));
    auto* runtime = static_cast<nvinfer1::IPluginV3OneRuntime*>(
        plugin->getCapabilityInterface(nvinfer1::PluginCapabilityType::kRUNTIME));
    check(core && build && runtime, tag + "core, build and runtime capability interfaces");
    if (core && build && runtime) {
        check(std::strcmp(core->getPluginNamespace(), "sllen") == 0 &&
                  std::strcmp(core->getPluginName(), "SllenAttention") == 0 &&
                  std::strcmp(core->getPluginVersion(), "1") == 0,
              tag + "the plugin reports the creator's name, version and namespace");
        nvinfer1::DataType in[3] = {nvinfer1::DataType::kHALF, nvinfer1::DataType::kHALF,
                                    nvinfer1::DataType::kHALF};
        nvinfer1::DataType out = nvinfer1::DataType::kFLOAT;
        check(build->getOutputDataTypes(&out, 1, in, 3) == 0 && out == nvinfer1::DataType::kHALF,
              tag + "output type follows the inputs (FP16 in, FP16 out)");
        // The runtime phase: TensorRT passes getFieldsToSerialize()'s fields back.
        const nvinfer1::PluginFieldCollection* saved = runtime->getFieldsToSerialize();
        nvinfer1::IPluginV3* again =
            creator->createPlugin("restored", saved, nvinfer1::TensorRTPhase::kRUNTIME);
        check(again != nullptr, tag + "createPlugin(kRUNTIME) from getFieldsToSerialize()");
        delete again;
    }
    delete plugin;
    ParserFields bad(*creator, 2, 48, 1.f);
    nvinfer1::IPluginV3* refused =
        creator->createPlugin("bad", &bad.fc, nvinfer1::TensorRTPhase::kBUILD);
    check(refused == nullptr, tag + "head_dim 48 is refused");
    delete refused;
}

}  // namespace

// What libnvinfer exports (NvInferRuntime.h); the plugin libraries resolve it here.
extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginRegistry*
getPluginRegistry() noexcept {
    return &g_registry;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s <static plugin library> <dynamic plugin library>\n",
                     argv[0]);
        return 2;
    }
    std::printf("TensorRT headers %d.%d.%d\n", NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR,
                NV_TENSORRT_PATCH);

    // ---- the static library: registers itself when loaded
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
        std::fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    check(g_registry.entries.size() == 1, "static library: loading it registers one creator");
    if (!g_registry.entries.empty()) {
        const Entry& e = g_registry.entries[0];
        check(e.ns == "sllen", "static library: registered under namespace \"sllen\" (got \"" +
                                   e.ns + "\")");
    }
    auto* found = as_v3(g_registry.getCreator("SllenAttention", "1", "sllen"));
    check(names_match(found),
          "static library: the parser's lookup (SllenAttention, 1, sllen) finds the creator");
    check(g_registry.getCreator("SllenAttention", "1", "") == nullptr,
          "static library: nothing under the empty namespace (REGISTER_TENSORRT_PLUGIN's)");
    if (found != nullptr) check_creator(found, "static library");
    check(dlsym(lib, "getCreators") == nullptr,
          "static library: no getCreators (loadLibrary would register the creator twice)");

    // ---- the dynamic library: entry points, no registration of its own
    const size_t before = g_registry.entries.size();
    void* dyn = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (dyn == nullptr) {
        std::fprintf(stderr, "dlopen %s: %s\n", argv[2], dlerror());
        return 1;
    }
    check(g_registry.entries.size() == before, "dynamic library: loading it registers nothing");
    using GetCreators = IPluginCreatorInterface* const* (*)(int32_t&);
    using SetLoggerFinder = void (*)(nvinfer1::ILoggerFinder*);
    auto get_creators = reinterpret_cast<GetCreators>(dlsym(dyn, "getCreators"));
    auto set_finder = reinterpret_cast<SetLoggerFinder>(dlsym(dyn, "setLoggerFinder"));
    check(get_creators != nullptr, "dynamic library: exports getCreators");
    check(set_finder != nullptr, "dynamic library: exports setLoggerFinder");
    if (get_creators != nullptr) {
        int32_t n = -1;
        IPluginCreatorInterface* const* creators = get_creators(n);
        check(n == 1 && creators != nullptr, "dynamic library: getCreators gives one creator");
        IPluginCreatorV3One* c = n == 1 && creators ? as_v3(creators[0]) : nullptr;
        check(names_match(c), "dynamic library: the creator is (SllenAttention, 1, sllen)");
        if (c != nullptr) {
            check_creator(c, "dynamic library");
            if (set_finder != nullptr) {
                static Finder finder;  // the plugin keeps the pointer
                set_finder(&finder);
                ParserFields bad(*c, 2, 48, 1.f);
                delete c->createPlugin("bad", &bad.fc, nvinfer1::TensorRTPhase::kBUILD);
                bool logged = false;
                for (const std::string& m : finder.logger.messages) {
                    logged = logged || m.find("head_dim") != std::string::npos;
                }
                check(logged, "dynamic library: errors reach the logger from setLoggerFinder");
                set_finder(nullptr);
            }
        }
    }
    // The libraries stay loaded: their creators live in them.
    std::printf("%s\n", g_failures == 0 ? "all passed" : "FAILED");
    return g_failures == 0 ? 0 : 1;
}
