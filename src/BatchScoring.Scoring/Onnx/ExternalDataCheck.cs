using System.Text;

namespace BatchScoring.Scoring.Onnx;

/// <summary>
/// Finds tensors that keep their data in another file (TensorProto <c>data_location = EXTERNAL</c> or an
/// <c>external_data</c> entry). ONNX Runtime would open the path such a tensor names, so a model that an API caller
/// uploads could make the service read any file; models must be self-contained. Walks every place a tensor can sit:
/// graph initializers (dense and sparse), node attributes (including subgraphs of If/Loop/Scan), functions and
/// training graphs. The walk reads the protobuf wire format directly and refuses an encoding it cannot follow, so
/// nothing ONNX Runtime would parse escapes the check.
/// </summary>
internal static class ExternalDataCheck
{
    /// <summary>protobuf's own default recursion limit.</summary>
    private const int MaxDepth = 100;

    private enum Message
    {
        Model,
        Graph,
        Node,
        Attribute,
        Tensor,
        SparseTensor,
        Function,
        TrainingInfo,
        Other,
    }

    /// <summary>The name of the first tensor with external data, "" for an unnamed one, or null when there is none.</summary>
    /// <exception cref="ModelLoadException">The bytes are not a protobuf message.</exception>
    public static string? FindExternalTensor(ReadOnlySpan<byte> model, string source)
    {
        try
        {
            return Walk(model, Message.Model, 0, 0);
        }
        catch (MalformedException ex)
        {
            throw new ModelLoadException($"Model file '{source}' is not a valid ONNX model: its protobuf encoding is broken ({ex.Message}).");
        }
    }

    private static string? Walk(ReadOnlySpan<byte> data, Message kind, int depth, int offset)
    {
        if (depth > MaxDepth)
        {
            throw new MalformedException($"messages nested deeper than {MaxDepth} at byte {offset}");
        }

        var position = 0;
        string? tensorName = null;
        var external = false;
        while (position < data.Length)
        {
            var tagAt = position;
            var tag = ReadVarint(data, ref position, offset);
            var field = tag >> 3;
            var wire = (int)(tag & 7);
            if (field == 0 || field > 536_870_911)
            {
                throw new MalformedException($"invalid field number at byte {offset + tagAt}");
            }

            switch (wire)
            {
                case 0:
                    var value = ReadVarint(data, ref position, offset);
                    external |= kind == Message.Tensor && field == 14 && value == 1;
                    break;
                case 1:
                    Skip(data, ref position, 8, offset);
                    break;
                case 5:
                    Skip(data, ref position, 4, offset);
                    break;
                case 2:
                    var length = ReadVarint(data, ref position, offset);
                    if (length > (ulong)(data.Length - position))
                    {
                        throw new MalformedException($"a field at byte {offset + tagAt} runs past the end of its message");
                    }

                    var body = data.Slice(position, (int)length);
                    var bodyOffset = offset + position;
                    position += (int)length;
                    if (kind == Message.Tensor && field == 13)
                    {
                        external = true;
                    }
                    else if (kind == Message.Tensor && field == 8)
                    {
                        tensorName = Encoding.UTF8.GetString(body);
                    }
                    else if (Child(kind, (int)field) is var child and not Message.Other
                        && Walk(body, child, depth + 1, bodyOffset) is { } found)
                    {
                        return found;
                    }

                    break;
                case 3:
                    SkipGroup(data, ref position, field, depth, offset);
                    break;
                default:
                    throw new MalformedException($"wire type {wire} at byte {offset + tagAt}");
            }
        }

        return external ? tensorName ?? string.Empty : null;
    }

    /// <summary>Where tensors can be found, by message and field number (onnx.proto).</summary>
    private static Message Child(Message parent, int field) => (parent, field) switch
    {
        (Message.Model, 7) => Message.Graph,
        (Message.Model, 20) => Message.TrainingInfo,
        (Message.Model, 25) => Message.Function,
        (Message.Graph, 1) => Message.Node,
        (Message.Graph, 5) => Message.Tensor,
        (Message.Graph, 15) => Message.SparseTensor,
        (Message.Node, 5) => Message.Attribute,
        (Message.Attribute, 5 or 10) => Message.Tensor,
        (Message.Attribute, 6 or 11) => Message.Graph,
        (Message.Attribute, 22 or 23) => Message.SparseTensor,
        (Message.Function, 7) => Message.Node,
        (Message.Function, 11) => Message.Attribute,
        (Message.TrainingInfo, 1 or 2) => Message.Graph,
        (Message.SparseTensor, 1 or 2) => Message.Tensor,
        _ => Message.Other,
    };

    private static ulong ReadVarint(ReadOnlySpan<byte> data, ref int position, int offset)
    {
        ulong result = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (position >= data.Length)
            {
                throw new MalformedException($"a number is cut off at byte {offset + position}");
            }

            var b = data[position++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw new MalformedException($"a number longer than ten bytes at byte {offset + position}");
    }

    private static void Skip(ReadOnlySpan<byte> data, ref int position, int count, int offset)
    {
        if (data.Length - position < count)
        {
            throw new MalformedException($"a value is cut off at byte {offset + position}");
        }

        position += count;
    }

    /// <summary>Skips a (deprecated) group up to its matching end tag; protobuf parsers accept them as unknown fields.</summary>
    private static void SkipGroup(ReadOnlySpan<byte> data, ref int position, ulong field, int depth, int offset)
    {
        if (depth + 1 > MaxDepth)
        {
            throw new MalformedException($"groups nested deeper than {MaxDepth} at byte {offset + position}");
        }

        while (true)
        {
            var tag = ReadVarint(data, ref position, offset);
            switch ((int)(tag & 7))
            {
                case 0:
                    ReadVarint(data, ref position, offset);
                    break;
                case 1:
                    Skip(data, ref position, 8, offset);
                    break;
                case 5:
                    Skip(data, ref position, 4, offset);
                    break;
                case 2:
                    var length = ReadVarint(data, ref position, offset);
                    if (length > (ulong)(data.Length - position))
                    {
                        throw new MalformedException($"a field runs past the end of its group at byte {offset + position}");
                    }

                    position += (int)length;
                    break;
                case 3:
                    SkipGroup(data, ref position, tag >> 3, depth + 1, offset);
                    break;
                case 4 when tag >> 3 == field:
                    return;
                default:
                    throw new MalformedException($"an unmatched group end at byte {offset + position}");
            }
        }
    }

    private sealed class MalformedException(string message) : Exception(message);
}
