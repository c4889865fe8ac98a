// TensorRT plugin for the sllen attention kernel (IPluginV3, TensorRT 10.x and 11.x).
//
// Name "SllenAttention", namespace "sllen", version "1": the op_type, plugin_namespace and
// plugin_version of the node sllen.export writes (export/onnx_export.py). TensorRT's ONNX parser
// asks the plugin registry for exactly that triple (IPluginRegistry::getCreator(name, version,
// namespace)), so the creator is registered under "sllen" (sllen_attention_plugin.cpp), never
// under REGISTER_TENSORRT_PLUGIN's "". tests/export/trt/test_plugin_convention.py holds these
// three constants against the exporter's. Not "Attention":
// TensorRT's ONNX parser chooses an importer by op_type alone and from 10.14 imports ONNX's own
// Attention op as an IAttention layer, so a plugin of that name would never be reached.
//
// Inputs Q, K, V: [batch, heads, tokens, head_dim], FP32 or FP16 (all three the same type,
// linear layout), dynamic batch and tokens; output [batch, heads, tokens, head_dim] of the same
// type. Attributes: num_heads and head_dim (checked against the tensors), scale (1.0 when the
// exporter folded 1/sqrt(d) into Q).
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <string>
#include <vector>

#if defined(_WIN32)
#define SLLEN_PLUGIN_EXPORT __declspec(dllexport)
#else
#define SLLEN_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

namespace sllen {

constexpr char const* kPluginName = "SllenAttention";
constexpr char const* kPluginVersion = "1";
constexpr char const* kPluginNamespace = "sllen";

// Register `creator` under its own namespace (getPluginNamespace(): "sllen"), the one
// convention of this project: the registry files a creator under the namespace argument of
// registerCreator, and the ONNX parser looks it up with the node's plugin_namespace.
template <typename Registry, typename Creator>
bool register_creator(Registry& registry, Creator& creator) noexcept {
    return registry.registerCreator(creator, creator.getPluginNamespace());
}

class AttentionPlugin final : public nvinfer1::IPluginV3,
                              public nvinfer1::IPluginV3OneCore,
                              public nvinfer1::IPluginV3OneBuild,
                              public nvinfer1::IPluginV3OneRuntime {
public:
    AttentionPlugin(int32_t num_heads, int32_t head_dim, float scale);
    AttentionPlugin(AttentionPlugin const& other);
    ~AttentionPlugin() override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(
        nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override { return kPluginName; }
    char const* getPluginVersion() const noexcept override { return kPluginVersion; }
    char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

    // IPluginV3OneBuild
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                            nvinfer1::DynamicPluginTensorDesc const* out,
                            int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
                               nvinfer1::DataType const* inputTypes,
                               int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                            nvinfer1::DimsExprs const* shapeInputs, int32_t nbShapeInputs,
                            nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                            nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                   int32_t nbInputs, int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override { return 1; }
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* /*inputs*/,
                            int32_t /*nbInputs*/,
                            nvinfer1::DynamicPluginTensorDesc const* /*outputs*/,
                            int32_t /*nbOutputs*/) const noexcept override {
        return 0;  // the kernel needs no scratch memory: that is the point of it
    }
    char const* getMetadataString() noexcept override { return mMetadata.c_str(); }

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
                          nvinfer1::PluginTensorDesc const* out,
                          int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                    nvinfer1::PluginTensorDesc const* outputDesc, void const* const* inputs,
                    void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(
        nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

private:
    void refreshFields();

    int32_t mNumHeads;
    int32_t mHeadDim;
    float mScale;
    std::string mMetadata;
    std::vector<nvinfer1::PluginField> mFields;
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

class AttentionPluginCreator final : public nvinfer1::IPluginCreatorV3One {
public:
    AttentionPluginCreator();
    ~AttentionPluginCreator() override = default;

    char const* getPluginName() const noexcept override { return kPluginName; }
    char const* getPluginVersion() const noexcept override { return kPluginVersion; }
    char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override {
        return &mFieldNames;
    }
    nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                      nvinfer1::TensorRTPhase phase) noexcept override;

private:
    std::vector<nvinfer1::PluginField> mFields;
    nvinfer1::PluginFieldCollection mFieldNames{};
};

}  // namespace sllen
