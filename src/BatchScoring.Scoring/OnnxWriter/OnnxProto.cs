namespace BatchScoring.Scoring.OnnxWriter;

/// <summary>onnx.TensorProto.DataType values.</summary>
public enum OnnxDataType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
}

/// <summary>One dimension of a tensor type: a fixed size or a symbolic name such as "N".</summary>
public readonly record struct OnnxDim(long? Value, string? Param)
{
    public static implicit operator OnnxDim(long value) => new(value, null);

    public static implicit operator OnnxDim(string param) => new(null, param);

    public static OnnxDim FromInt64(long value) => new(value, null);

    public static OnnxDim FromString(string param) => new(null, param);
}

/// <summary>onnx.TypeProto: a tensor, a sequence or a map type.</summary>
public sealed class OnnxType
{
    private OnnxType()
    {
    }

    public OnnxDataType ElementType { get; private init; }

    /// <summary>Tensor dimensions; null means "shape unknown" (no shape field written).</summary>
    public IReadOnlyList<OnnxDim>? Dims { get; private init; }

    public OnnxType? SequenceElement { get; private init; }

    public OnnxDataType MapKey { get; private init; }

    public OnnxType? MapValue { get; private init; }

    public static OnnxType Tensor(OnnxDataType elementType, params OnnxDim[]? dims) => new() { ElementType = elementType, Dims = dims };

    public static OnnxType Sequence(OnnxType element) => new() { SequenceElement = element };

    public static OnnxType Map(OnnxDataType key, OnnxType value) => new() { MapKey = key, MapValue = value };

    internal void WriteTo(ProtoWriter w)
    {
        if (SequenceElement is not null)
        {
            // TypeProto.sequence_type = 4 { elem_type = 1 }
            w.WriteMessage(4, s => s.WriteMessage(1, SequenceElement.WriteTo));
        }
        else if (MapValue is not null)
        {
            // TypeProto.map_type = 5 { key_type = 1; value_type = 2 }
            w.WriteMessage(5, m =>
            {
                m.WriteInt32(1, (int)MapKey);
                m.WriteMessage(2, MapValue.WriteTo);
            });
        }
        else
        {
            // TypeProto.tensor_type = 1 { elem_type = 1; shape = 2 { dim = 1 { dim_value = 1 | dim_param = 2 } } }
            w.WriteMessage(1, t =>
            {
                t.WriteInt32(1, (int)ElementType);
                if (Dims is not null)
                {
                    t.WriteMessage(2, shape =>
                    {
                        foreach (var dim in Dims)
                        {
                            shape.WriteMessage(1, d =>
                            {
                                if (dim.Param is not null)
                                {
                                    d.WriteString(2, dim.Param);
                                }
                                else if (dim.Value is { } value)
                                {
                                    d.WriteInt64(1, value);
                                }
                            });
                        }
                    });
                }
            });
        }
    }
}

/// <summary>onnx.ValueInfoProto: a named graph input or output.</summary>
public sealed record OnnxValueInfo(string Name, OnnxType Type)
{
    internal void WriteTo(ProtoWriter w)
    {
        w.WriteString(1, Name);
        w.WriteMessage(2, Type.WriteTo);
    }
}

/// <summary>onnx.TensorProto with data in the typed repeated fields (no raw_data).</summary>
public sealed class OnnxTensor
{
    private OnnxTensor(string name, OnnxDataType dataType, long[] dims)
    {
        Name = name;
        DataType = dataType;
        Dims = dims;
    }

    public string Name { get; }

    public OnnxDataType DataType { get; }

    public IReadOnlyList<long> Dims { get; }

    private float[]? FloatData { get; init; }

    private long[]? Int64Data { get; init; }

    private int[]? Int32Data { get; init; }

    private double[]? DoubleData { get; init; }

    private string[]? StringData { get; init; }

    private string? ExternalLocation { get; init; }

    public static OnnxTensor Float(string name, long[] dims, float[] data) => Checked(new OnnxTensor(name, OnnxDataType.Float, dims) { FloatData = data }, data.Length);

    public static OnnxTensor Double(string name, long[] dims, double[] data) => Checked(new OnnxTensor(name, OnnxDataType.Double, dims) { DoubleData = data }, data.Length);

    public static OnnxTensor Int64(string name, long[] dims, long[] data) => Checked(new OnnxTensor(name, OnnxDataType.Int64, dims) { Int64Data = data }, data.Length);

    public static OnnxTensor Int32(string name, long[] dims, int[] data) => Checked(new OnnxTensor(name, OnnxDataType.Int32, dims) { Int32Data = data }, data.Length);

    public static OnnxTensor String(string name, long[] dims, string[] data) => Checked(new OnnxTensor(name, OnnxDataType.String, dims) { StringData = data }, data.Length);

    /// <summary>
    /// A float tensor whose values live in another file (data_location = EXTERNAL, external_data "location").
    /// The service refuses such models; this exists to test that it does.
    /// </summary>
    public static OnnxTensor ExternalFloat(string name, long[] dims, string location) =>
        new(name, OnnxDataType.Float, dims) { ExternalLocation = location };

    private static OnnxTensor Checked(OnnxTensor tensor, int count)
    {
        long expected = 1;
        foreach (var d in tensor.Dims)
        {
            expected *= d;
        }

        if (expected != count)
        {
            throw new ArgumentException($"Tensor '{tensor.Name}' has {count} values but its dims need {expected}.");
        }

        return tensor;
    }

    internal void WriteTo(ProtoWriter w)
    {
        // TensorProto: dims = 1, data_type = 2, float_data = 4, int32_data = 5, string_data = 6,
        // int64_data = 7, name = 8, double_data = 10.
        w.WritePackedInt64(1, Dims.ToArray());
        w.WriteInt32(2, (int)DataType);
        if (FloatData is not null)
        {
            w.WritePackedFloat(4, FloatData);
        }

        if (Int32Data is not null)
        {
            w.WritePackedInt32(5, Int32Data);
        }

        if (StringData is not null)
        {
            foreach (var s in StringData)
            {
                w.WriteString(6, s);
            }
        }

        if (Int64Data is not null)
        {
            w.WritePackedInt64(7, Int64Data);
        }

        if (!string.IsNullOrEmpty(Name))
        {
            w.WriteString(8, Name);
        }

        if (DoubleData is not null)
        {
            w.WritePackedDouble(10, DoubleData);
        }

        if (ExternalLocation is not null)
        {
            // external_data = 13 { key = 1, value = 2 }, data_location = 14 (EXTERNAL = 1).
            w.WriteMessage(13, e =>
            {
                e.WriteString(1, "location");
                e.WriteString(2, ExternalLocation);
            });
            w.WriteInt32(14, 1);
        }
    }
}

/// <summary>onnx.AttributeProto.AttributeType values.</summary>
public enum OnnxAttributeType
{
    Float = 1,
    Int = 2,
    String = 3,
    Tensor = 4,
    Floats = 6,
    Ints = 7,
    Strings = 8,
}

/// <summary>onnx.AttributeProto for the attribute kinds our sample models need.</summary>
public sealed class OnnxAttribute
{
    private OnnxAttribute(string name, OnnxAttributeType type)
    {
        Name = name;
        Type = type;
    }

    public string Name { get; }

    public OnnxAttributeType Type { get; }

    private float F { get; init; }

    private long I { get; init; }

    private string? S { get; init; }

    private OnnxTensor? T { get; init; }

    private float[]? Floats { get; init; }

    private long[]? Ints { get; init; }

    private string[]? Strings { get; init; }

    public static OnnxAttribute Float(string name, float value) => new(name, OnnxAttributeType.Float) { F = value };

    public static OnnxAttribute Int(string name, long value) => new(name, OnnxAttributeType.Int) { I = value };

    public static OnnxAttribute String(string name, string value) => new(name, OnnxAttributeType.String) { S = value };

    public static OnnxAttribute Tensor(string name, OnnxTensor value) => new(name, OnnxAttributeType.Tensor) { T = value };

    public static OnnxAttribute FloatList(string name, params float[] values) => new(name, OnnxAttributeType.Floats) { Floats = values };

    public static OnnxAttribute IntList(string name, params long[] values) => new(name, OnnxAttributeType.Ints) { Ints = values };

    public static OnnxAttribute StringList(string name, params string[] values) => new(name, OnnxAttributeType.Strings) { Strings = values };

    internal void WriteTo(ProtoWriter w)
    {
        // AttributeProto: name = 1, f = 2, i = 3, s = 4, t = 5, floats = 7, ints = 8, strings = 9, type = 20.
        w.WriteString(1, Name);
        switch (Type)
        {
            case OnnxAttributeType.Float:
                w.WriteFloat(2, F);
                break;
            case OnnxAttributeType.Int:
                w.WriteInt64(3, I);
                break;
            case OnnxAttributeType.String:
                w.WriteString(4, S!);
                break;
            case OnnxAttributeType.Tensor:
                w.WriteMessage(5, T!.WriteTo);
                break;
            case OnnxAttributeType.Floats:
                w.WritePackedFloat(7, Floats!);
                break;
            case OnnxAttributeType.Ints:
                w.WritePackedInt64(8, Ints!);
                break;
            case OnnxAttributeType.Strings:
                foreach (var s in Strings!)
                {
                    w.WriteString(9, s);
                }

                break;
            default:
                throw new InvalidOperationException($"Unsupported attribute type {Type}.");
        }

        w.WriteInt32(20, (int)Type);
    }
}

/// <summary>onnx.NodeProto.</summary>
public sealed class OnnxNode
{
    public OnnxNode(string opType, IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, string domain = "", string? name = null)
    {
        OpType = opType;
        Inputs = inputs;
        Outputs = outputs;
        Domain = domain;
        Name = name;
    }

    public string OpType { get; }

    public string Domain { get; }

    public string? Name { get; }

    public IReadOnlyList<string> Inputs { get; }

    public IReadOnlyList<string> Outputs { get; }

    public List<OnnxAttribute> Attributes { get; } = [];

    public OnnxNode With(OnnxAttribute attribute)
    {
        Attributes.Add(attribute);
        return this;
    }

    internal void WriteTo(ProtoWriter w)
    {
        // NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5, domain = 7.
        foreach (var input in Inputs)
        {
            w.WriteString(1, input);
        }

        foreach (var output in Outputs)
        {
            w.WriteString(2, output);
        }

        if (Name is not null)
        {
            w.WriteString(3, Name);
        }

        w.WriteString(4, OpType);
        foreach (var attribute in Attributes)
        {
            w.WriteMessage(5, attribute.WriteTo);
        }

        if (!string.IsNullOrEmpty(Domain))
        {
            w.WriteString(7, Domain);
        }
    }
}

/// <summary>onnx.GraphProto with helpers to add nodes, initializers, inputs and outputs.</summary>
public sealed class OnnxGraph
{
    private int _nodeCounter;

    public OnnxGraph(string name) => Name = name;

    public string Name { get; }

    public List<OnnxNode> Nodes { get; } = [];

    public List<OnnxTensor> Initializers { get; } = [];

    public List<OnnxValueInfo> Inputs { get; } = [];

    public List<OnnxValueInfo> Outputs { get; } = [];

    public OnnxGraph AddInput(string name, OnnxType type)
    {
        Inputs.Add(new OnnxValueInfo(name, type));
        return this;
    }

    public OnnxGraph AddOutput(string name, OnnxType type)
    {
        Outputs.Add(new OnnxValueInfo(name, type));
        return this;
    }

    /// <summary>Adds an initializer and returns its name, for use as a node input.</summary>
    public string AddInitializer(OnnxTensor tensor)
    {
        Initializers.Add(tensor);
        return tensor.Name;
    }

    /// <summary>Adds a node with a generated unique name and returns it (for attributes).</summary>
    public OnnxNode AddNode(string opType, IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, string domain = "")
    {
        var node = new OnnxNode(opType, inputs, outputs, domain, $"{opType}_{_nodeCounter++}");
        Nodes.Add(node);
        return node;
    }

    internal void WriteTo(ProtoWriter w)
    {
        // GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12.
        foreach (var node in Nodes)
        {
            w.WriteMessage(1, node.WriteTo);
        }

        w.WriteString(2, Name);
        foreach (var initializer in Initializers)
        {
            w.WriteMessage(5, initializer.WriteTo);
        }

        foreach (var input in Inputs)
        {
            w.WriteMessage(11, input.WriteTo);
        }

        foreach (var output in Outputs)
        {
            w.WriteMessage(12, output.WriteTo);
        }
    }
}

/// <summary>onnx.ModelProto: the root message of an .onnx file.</summary>
public sealed class OnnxModel
{
    public const string MlDomain = "ai.onnx.ml";

    public OnnxModel(OnnxGraph graph) => Graph = graph;

    public long IrVersion { get; init; } = 8;

    public string ProducerName { get; init; } = "batchscoring";

    public string ProducerVersion { get; init; } = "1.0";

    public long ModelVersion { get; init; } = 1;

    public string? DocString { get; init; }

    public OnnxGraph Graph { get; }

    /// <summary>Operator set imports by domain ("" is the default ONNX domain).</summary>
    public Dictionary<string, long> OpsetImports { get; } = new(StringComparer.Ordinal) { [""] = 17 };

    public List<KeyValuePair<string, string>> MetadataProps { get; } = [];

    public OnnxModel WithOpset(string domain, long version)
    {
        OpsetImports[domain] = version;
        return this;
    }

    public OnnxModel WithMetadata(string key, string value)
    {
        MetadataProps.Add(new KeyValuePair<string, string>(key, value));
        return this;
    }

    public byte[] ToBytes()
    {
        // ModelProto: ir_version = 1, producer_name = 2, producer_version = 3, model_version = 5,
        // doc_string = 6, graph = 7, opset_import = 8 { domain = 1, version = 2 },
        // metadata_props = 14 { key = 1, value = 2 }.
        var w = new ProtoWriter();
        w.WriteInt64(1, IrVersion);
        w.WriteString(2, ProducerName);
        w.WriteString(3, ProducerVersion);
        w.WriteInt64(5, ModelVersion);
        if (DocString is not null)
        {
            w.WriteString(6, DocString);
        }

        w.WriteMessage(7, Graph.WriteTo);
        foreach (var (domain, version) in OpsetImports)
        {
            w.WriteMessage(8, o =>
            {
                o.WriteString(1, domain);
                o.WriteInt64(2, version);
            });
        }

        foreach (var (key, value) in MetadataProps)
        {
            w.WriteMessage(14, e =>
            {
                e.WriteString(1, key);
                e.WriteString(2, value);
            });
        }

        return w.ToArray();
    }
}
