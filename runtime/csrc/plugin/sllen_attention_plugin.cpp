// TensorRT IPluginV3 plugin "SllenAttention" (namespace "sllen", version "1"): the ONNX node
// sllen.export writes for HSBAB, run by libsllen_attention's kernel. Written against the
// documented IPluginV3 / IPluginV3OneCore / IPluginV3OneBuild / IPluginV3OneRuntime and
// IPluginCreatorV3One interfaces of NvInferRuntime.h (identical in TensorRT 10.0 - 10.x and
// 11.x), so one source builds for Jetson's 10.3 and desktop 11.x (compiled here against the
// include/ folders of NVIDIA/TensorRT's v10.3.0 and v11.1 tags; never run against a real
// libnvinfer on this project's machines).
//
// One source, two libraries (CMakeLists.txt), because TensorRT has two ways to load a plugin
// library and they must not both register the same creator (IPluginRegistry::loadLibrary "will
// fail and return nullptr if any of the plugins are already registered"):
// - libsllen_attention_plugin.so (static registration): loading it (ctypes.CDLL, dlopen,
//   trtexec --staticPlugins) runs a static initializer that registers the creator with
//   getPluginRegistry()->registerCreator(creator, "sllen"), the namespace the ONNX node carries,
//   as NVIDIA's plugin/api/inferPlugin.cpp registers its creators under the library namespace.
//   REGISTER_TENSORRT_PLUGIN is not used: it registers under "" (NvInferRuntime.h,
//   PluginRegistrar), where the parser's lookup with plugin_namespace "sllen" would not find it.
// - libsllen_attention_plugin_dynamic.so (SLLEN_PLUGIN_DYNAMIC): registers nothing when loaded
//   and exports the two entry points of a "plugin shared library" (samples/trtexec/README.md,
//   plugin/vc/vfcCommon.h): getCreators() and setLoggerFinder(), for
//   IPluginRegistry::loadLibrary / trtexec --dynamicPlugins and for the plugin library that
//   version-compatible engines carry (IBuilderConfig plugins_to_serialize).
#include "sllen_attention_plugin.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "sllen_attention.h"

namespace sllen {
namespace {

using nvinfer1::DataType;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;

// Set by setLoggerFinder() (dynamic library only): TensorRT's logger of the engine or context
// that called the plugin, found per call ("must be called from the thread in which the plugin
// method was called", NvInferRuntime.h ILoggerFinder). Without it, messages go to stderr.
std::atomic<nvinfer1::ILoggerFinder*> g_logger_finder{nullptr};

void log_error(char const* what) noexcept {
    nvinfer1::ILoggerFinder* finder = g_logger_finder.load();
    nvinfer1::ILogger* logger = finder != nullptr ? finder->findLogger() : nullptr;
    if (logger != nullptr) {
        try {
            const std::string message = std::string("[sllen::SllenAttention] ") + what;
            logger->log(nvinfer1::ILogger::Severity::kERROR, message.c_str());
            return;
        } catch (...) {  // fall through to stderr
        }
    }
    std::fprintf(stderr, "[sllen::SllenAttention] %s\n", what);
}

bool read_int(PluginField const& f, int32_t* out) {
    if (f.data == nullptr || f.length < 1) return false;
    if (f.type == PluginFieldType::kINT32) {
        *out = *static_cast<int32_t const*>(f.data);
        return true;
    }
    if (f.type == PluginFieldType::kINT64) {  // the parser narrows ONNX ints; accept both
        *out = static_cast<int32_t>(*static_cast<int64_t const*>(f.data));
        return true;
    }
    return false;
}

bool read_float(PluginField const& f, float* out) {
    if (f.data == nullptr || f.length < 1) return false;
    if (f.type == PluginFieldType::kFLOAT32) {
        *out = *static_cast<float const*>(f.data);
        return true;
    }
    if (f.type == PluginFieldType::kFLOAT64) {
        *out = static_cast<float>(*static_cast<double const*>(f.data));
        return true;
    }
    return false;
}

int dtype_of(DataType t) {
    return t == DataType::kHALF ? SLLEN_ATTENTION_FLOAT16 : SLLEN_ATTENTION_FLOAT32;
}

// Q, K and V must be [B, H, N, D] of one shape; head_dim must match the attribute when both
// are known (-1: not known until runtime).
bool check_dims(nvinfer1::Dims const* dims, int32_t n, int32_t head_dim) {
    for (int32_t i = 0; i < n; ++i) {
        if (dims[i].nbDims != 4) return false;
        for (int32_t a = 0; a < 4; ++a) {
            const int64_t x = dims[i].d[a], y = dims[0].d[a];
            if (x >= 0 && y >= 0 && x != y) return false;
        }
    }
    const int64_t d = dims[0].d[3];
    if (d >= 0 && !sllen_attention_supported(d, SLLEN_ATTENTION_FLOAT32)) return false;
    return !(head_dim > 0 && d >= 0 && d != head_dim);
}

}  // namespace

// ------------------------------------------------------------------ plugin

AttentionPlugin::AttentionPlugin(int32_t num_heads, int32_t head_dim, float scale)
    : mNumHeads(num_heads), mHeadDim(head_dim), mScale(scale) {
    refreshFields();
}

AttentionPlugin::AttentionPlugin(AttentionPlugin const& other)
    : nvinfer1::IPluginV3(other),
      nvinfer1::IPluginV3OneCore(other),
      nvinfer1::IPluginV3OneBuild(other),
      nvinfer1::IPluginV3OneRuntime(other),
      mNumHeads(other.mNumHeads),
      mHeadDim(other.mHeadDim),
      mScale(other.mScale) {
    refreshFields();  // the fields point at this object's members
}

void AttentionPlugin::refreshFields() {
    mMetadata = "num_heads=" + std::to_string(mNumHeads) + " head_dim=" +
                std::to_string(mHeadDim) + " scale=" + std::to_string(mScale);
    mFields.clear();
    mFields.emplace_back("num_heads", &mNumHeads, PluginFieldType::kINT32, 1);
    mFields.emplace_back("head_dim", &mHeadDim, PluginFieldType::kINT32, 1);
    mFields.emplace_back("scale", &mScale, PluginFieldType::kFLOAT32, 1);
    mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
    mFieldCollection.fields = mFields.data();
}

nvinfer1::IPluginCapability* AttentionPlugin::getCapabilityInterface(
    nvinfer1::PluginCapabilityType type) noexcept {
    switch (type) {
        case nvinfer1::PluginCapabilityType::kCORE:
            return static_cast<nvinfer1::IPluginV3OneCore*>(this);
        case nvinfer1::PluginCapabilityType::kBUILD:
            return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
        case nvinfer1::PluginCapabilityType::kRUNTIME:
            return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

nvinfer1::IPluginV3* AttentionPlugin::clone() noexcept {
    try {
        return new AttentionPlugin(*this);
    } catch (std::exception const& e) {
        log_error(e.what());
        return nullptr;
    }
}

int32_t AttentionPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in,
                                         int32_t nbInputs,
                                         nvinfer1::DynamicPluginTensorDesc const* /*out*/,
                                         int32_t nbOutputs) noexcept {
    if (nbInputs != 3 || nbOutputs != 1) {
        log_error("expects 3 inputs (Q, K, V) and 1 output");
        return -1;
    }
    nvinfer1::Dims dims[3] = {in[0].desc.dims, in[1].desc.dims, in[2].desc.dims};
    if (!check_dims(dims, 3, mHeadDim)) {
        log_error("Q, K and V must be [batch, heads, tokens, head_dim] of one shape with "
                  "head_dim 32, 64, 128, 256 or 512 (matching the head_dim attribute)");
        return -1;
    }
    return 0;
}

int32_t AttentionPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs,
                                            DataType const* inputTypes,
                                            int32_t nbInputs) const noexcept {
    if (nbOutputs != 1 || nbInputs != 3) return -1;
    outputTypes[0] = inputTypes[0];
    return 0;
}

int32_t AttentionPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                         nvinfer1::DimsExprs const* /*shapeInputs*/,
                                         int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
                                         int32_t nbOutputs,
                                         nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept {
    if (nbInputs != 3 || nbOutputs != 1 || inputs[0].nbDims != 4) return -1;
    outputs[0] = inputs[0];                 // [batch, heads, tokens, .]
    outputs[0].d[3] = inputs[2].d[3];       // V's width
    return 0;
}

bool AttentionPlugin::supportsFormatCombination(int32_t pos,
                                                nvinfer1::DynamicPluginTensorDesc const* inOut,
                                                int32_t nbInputs, int32_t nbOutputs) noexcept {
    if (nbInputs != 3 || nbOutputs != 1 || pos < 0 || pos >= 4) return false;
    nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
    if (desc.format != nvinfer1::TensorFormat::kLINEAR) return false;
    if (pos == 0) return desc.type == DataType::kFLOAT || desc.type == DataType::kHALF;
    return desc.type == inOut[0].desc.type;  // one type for Q, K, V and the output
}

int32_t AttentionPlugin::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
                                       nvinfer1::PluginTensorDesc const* /*out*/,
                                       int32_t nbOutputs) noexcept {
    if (nbInputs != 3 || nbOutputs != 1) return -1;
    nvinfer1::Dims dims[3] = {in[0].dims, in[1].dims, in[2].dims};
    if (!check_dims(dims, 3, mHeadDim)) {
        log_error("runtime shapes of Q, K, V differ or head_dim is unsupported");
        return -1;
    }
    return 0;
}

int32_t AttentionPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                                 nvinfer1::PluginTensorDesc const* /*outputDesc*/,
                                 void const* const* inputs, void* const* outputs,
                                 void* /*workspace*/, cudaStream_t stream) noexcept {
    nvinfer1::Dims const& d = inputDesc[0].dims;
    const int rc = sllen_attention_forward(inputs[0], inputs[1], inputs[2], outputs[0], d.d[0],
                                           d.d[1], d.d[2], d.d[3], mScale,
                                           dtype_of(inputDesc[0].type), stream);
    if (rc != SLLEN_ATTENTION_OK) {
        log_error(sllen_attention_last_error());
        return -1;
    }
    return 0;
}

nvinfer1::IPluginV3* AttentionPlugin::attachToContext(
    nvinfer1::IPluginResourceContext* /*context*/) noexcept {
    return clone();  // no per-context resources
}

nvinfer1::PluginFieldCollection const* AttentionPlugin::getFieldsToSerialize() noexcept {
    return &mFieldCollection;
}

// ------------------------------------------------------------------ creator

AttentionPluginCreator::AttentionPluginCreator() {
    // The ONNX node's attributes (plugin_version / plugin_namespace are read by the parser).
    mFields.emplace_back("num_heads", nullptr, PluginFieldType::kINT32, 1);
    mFields.emplace_back("head_dim", nullptr, PluginFieldType::kINT32, 1);
    mFields.emplace_back("scale", nullptr, PluginFieldType::kFLOAT32, 1);
    mFieldNames.nbFields = static_cast<int32_t>(mFields.size());
    mFieldNames.fields = mFields.data();
}

nvinfer1::IPluginV3* AttentionPluginCreator::createPlugin(
    char const* /*name*/, nvinfer1::PluginFieldCollection const* fc,
    nvinfer1::TensorRTPhase /*phase*/) noexcept {
    // Build phase: the ONNX attributes; runtime phase: getFieldsToSerialize()'s fields.
    int32_t num_heads = 0, head_dim = 0;
    float scale = 1.f;
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
        PluginField const& f = fc->fields[i];
        if (f.name == nullptr) continue;
        bool ok = true;
        if (std::strcmp(f.name, "num_heads") == 0) ok = read_int(f, &num_heads);
        else if (std::strcmp(f.name, "head_dim") == 0) ok = read_int(f, &head_dim);
        else if (std::strcmp(f.name, "scale") == 0) ok = read_float(f, &scale);
        if (!ok) {
            log_error("attribute has an unexpected type (num_heads, head_dim: int; scale: float)");
            return nullptr;
        }
    }
    if (head_dim > 0 && !sllen_attention_supported(head_dim, SLLEN_ATTENTION_FLOAT32)) {
        log_error("head_dim must be 32, 64, 128, 256 or 512");
        return nullptr;
    }
    if (num_heads < 0 || !std::isfinite(scale)) {
        log_error("num_heads must be >= 0 and scale finite");
        return nullptr;
    }
    try {
        return new AttentionPlugin(num_heads, head_dim, scale);
    } catch (std::exception const& e) {
        log_error(e.what());
        return nullptr;
    }
}

// ------------------------------------------------------------------ registration

#if !defined(SLLEN_PLUGIN_DYNAMIC)
namespace {

// The static library's registration, run when the library is loaded. The creator lives as long
// as the library; like NVIDIA's PluginRegistrar it is not deregistered at unload (the registry
// may already be gone during process exit).
struct StaticRegistration {
    AttentionPluginCreator creator;
    StaticRegistration() noexcept {
        nvinfer1::IPluginRegistry* registry = getPluginRegistry();
        if (registry == nullptr || !register_creator(*registry, creator)) {
            // registerCreator "returns false if a plugin creator with the same type is already
            // registered": the library was loaded twice under different paths, or the dynamic
            // library's creator is registered already.
            log_error("could not register the plugin creator sllen::SllenAttention version 1 "
                      "(already registered, or no plugin registry)");
        }
    }
};

StaticRegistration g_registration;

}  // namespace
#endif

}  // namespace sllen

#if defined(SLLEN_PLUGIN_DYNAMIC)
// The entry points of a plugin shared library, with the signatures of samples/trtexec/README.md
// and plugin/vc/vfcCommon.h. TensorRT registers the creators it gets from getCreators() itself.
extern "C" SLLEN_PLUGIN_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(
    int32_t& nbCreators) {
    static sllen::AttentionPluginCreator creator;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&creator};
    nbCreators = 1;
    return creators;
}

extern "C" SLLEN_PLUGIN_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
    // First non-null finder wins, as in NVIDIA's vfcCommon.cpp.
    nvinfer1::ILoggerFinder* expected = nullptr;
    if (finder != nullptr) sllen::g_logger_finder.compare_exchange_strong(expected, finder);
}
#endif
