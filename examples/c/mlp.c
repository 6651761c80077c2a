/*
 * A plain backprop of the documents' networks in C, behind backprop-conformance's line protocol.
 *
 * One JSON request per line on stdin, one JSON response per line on stdout
 * (README: "Checking code in any language"). It does the documents' pieces:
 * identity, sigmoid, tanh and relu layers, mse, bce and cross_entropy, mean
 * or sum, with or without biases; anything else it answers "unsupported".
 * W is (n_out, n_in), z = W a + b per sample, as the documents write it.
 *
 *     cc -O2 -o mlp mlp.c -lm                 # conforms
 *     cc -O2 -DBROKEN -o mlp-broken mlp.c -lm # dJ/da for mse without its factor 2
 *
 * The JSON reader below knows just what the protocol sends: objects,
 * arrays, numbers, strings without escapes, true, false and null.
 */
#define _POSIX_C_SOURCE 200809L /* getline */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small JSON reader ------------------------------------------------------------- */

typedef enum { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT } Kind;

typedef struct Json {
    Kind kind;
    double number;
    char *string;
    struct Json **items; /* array items, or object values */
    char **keys;         /* object keys */
    int count;
} Json;

static const char *skip(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static Json *parse(const char **p);

static Json *node(Kind kind) {
    Json *json = calloc(1, sizeof(Json));
    json->kind = kind;
    return json;
}

static char *parse_string(const char **p) {
    const char *start = ++*p;
    while (**p && **p != '"') (*p)++;
    size_t length = (size_t)(*p - start);
    char *text = malloc(length + 1);
    memcpy(text, start, length);
    text[length] = '\0';
    if (**p == '"') (*p)++;
    return text;
}

static void append(Json *json, Json *item, char *key) {
    json->items = realloc(json->items, sizeof(Json *) * (size_t)(json->count + 1));
    json->keys = realloc(json->keys, sizeof(char *) * (size_t)(json->count + 1));
    json->items[json->count] = item;
    json->keys[json->count] = key;
    json->count++;
}

static Json *parse(const char **p) {
    *p = skip(*p);
    if (**p == '{' || **p == '[') {
        int object = **p == '{';
        Json *json = node(object ? J_OBJECT : J_ARRAY);
        (*p)++;
        *p = skip(*p);
        while (**p && **p != (object ? '}' : ']')) {
            char *key = NULL;
            if (object) {
                key = parse_string(p);
                *p = skip(*p);
                if (**p == ':') (*p)++;
            }
            append(json, parse(p), key);
            *p = skip(*p);
            if (**p == ',') (*p)++;
            *p = skip(*p);
        }
        if (**p) (*p)++;
        return json;
    }
    if (**p == '"') {
        Json *json = node(J_STRING);
        json->string = parse_string(p);
        return json;
    }
    if (strncmp(*p, "true", 4) == 0 || strncmp(*p, "false", 5) == 0) {
        Json *json = node(J_BOOL);
        json->number = **p == 't';
        *p += json->number ? 4 : 5;
        return json;
    }
    if (strncmp(*p, "null", 4) == 0) {
        *p += 4;
        return node(J_NULL);
    }
    Json *json = node(J_NUMBER);
    char *end;
    json->number = strtod(*p, &end);
    *p = end;
    return json;
}

static void release(Json *json) {
    if (!json) return;
    for (int i = 0; i < json->count; i++) {
        release(json->items[i]);
        free(json->keys[i]);
    }
    free(json->items);
    free(json->keys);
    free(json->string);
    free(json);
}

static Json *get(const Json *object, const char *key) {
    for (int i = 0; object && object->kind == J_OBJECT && i < object->count; i++)
        if (strcmp(object->keys[i], key) == 0) return object->items[i];
    return NULL;
}

/* ---- the network ---------------------------------------------------------------------- */

enum { IDENTITY, SIGMOID, TANH, RELU };
enum { MSE, BCE, CROSS_ENTROPY };

typedef struct {
    int depth, bias, mean, loss;
    int *sizes, *activations;
} Network;

typedef struct {
    double *w, *b; /* w: n_out x n_in, row-major; b: n_out, or NULL */
} Layer;

static const char *read_network(const Json *spec, Network *network) {
    static char reason[256];
    Json *sizes = get(spec, "sizes"), *activations = get(spec, "activations");
    const char *loss = get(spec, "loss")->string;
    network->depth = sizes->count - 1;
    network->sizes = malloc(sizeof(int) * (size_t)sizes->count);
    network->activations = malloc(sizeof(int) * (size_t)network->depth);
    for (int i = 0; i < sizes->count; i++) network->sizes[i] = (int)sizes->items[i]->number;
    for (int l = 0; l < network->depth; l++) {
        const char *name = activations->items[l]->string;
        if (strcmp(name, "identity") == 0) network->activations[l] = IDENTITY;
        else if (strcmp(name, "sigmoid") == 0) network->activations[l] = SIGMOID;
        else if (strcmp(name, "tanh") == 0) network->activations[l] = TANH;
        else if (strcmp(name, "relu") == 0) network->activations[l] = RELU;
        else {
            snprintf(reason, sizeof reason, "activation %s is not implemented in C", name);
            return reason;
        }
    }
    if (strcmp(loss, "mse") == 0) network->loss = MSE;
    else if (strcmp(loss, "bce") == 0) network->loss = BCE;
    else if (strcmp(loss, "cross_entropy") == 0) network->loss = CROSS_ENTROPY;
    else {
        snprintf(reason, sizeof reason, "loss %s is not implemented in C", loss);
        return reason;
    }
    network->bias = (int)get(spec, "bias")->number;
    network->mean = strcmp(get(spec, "reduction")->string, "mean") == 0;
    return NULL;
}

static Layer *read_params(const Json *params, const Network *network) {
    Layer *layers = calloc((size_t)network->depth, sizeof(Layer));
    for (int l = 0; l < network->depth; l++) {
        int n_in = network->sizes[l], n_out = network->sizes[l + 1];
        Json *w = params->items[l]->items[0], *b = params->items[l]->items[1];
        layers[l].w = malloc(sizeof(double) * (size_t)(n_out * n_in));
        for (int j = 0; j < n_out; j++)
            for (int k = 0; k < n_in; k++) layers[l].w[j * n_in + k] = w->items[j]->items[k]->number;
        if (b && b->kind == J_ARRAY) {
            layers[l].b = malloc(sizeof(double) * (size_t)n_out);
            for (int j = 0; j < n_out; j++) layers[l].b[j] = b->items[j]->number;
        }
    }
    return layers;
}

static double sigmoid(double z) { return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)); }
static double softplus(double z) { return fmax(z, 0) + log1p(exp(-fabs(z))); }

static double activate(int kind, double z) {
    switch (kind) {
    case SIGMOID: return sigmoid(z);
    case TANH: return tanh(z);
    case RELU: return z > 0 ? z : 0;
    default: return z;
    }
}

static double slope(int kind, double z) {
    switch (kind) {
    case SIGMOID: return sigmoid(z) * sigmoid(-z);
    case TANH: { double t = tanh(z); return 1 - t * t; }
    case RELU: return z > 0 ? 1 : 0;
    default: return 1;
    }
}

static int widest_layer(const Network *net) {
    int widest = 0;
    for (int i = 0; i <= net->depth; i++) widest = net->sizes[i] > widest ? net->sizes[i] : widest;
    return widest;
}

/* One sample's forward pass: z[l][j] and a[l][j] at l * widest + j, a[0] the input. */
static void forward_sample(const Network *net, const Layer *layers, const Json *xs, double *z, double *a,
                           int widest) {
    for (int k = 0; k < net->sizes[0]; k++) a[k] = xs->items[k]->number;
    for (int l = 0; l < net->depth; l++) {
        int n_in = net->sizes[l], width = net->sizes[l + 1];
        for (int j = 0; j < width; j++) {
            double sum = layers[l].b ? layers[l].b[j] : 0;
            for (int k = 0; k < n_in; k++) sum += layers[l].w[j * n_in + k] * a[l * widest + k];
            z[(l + 1) * widest + j] = sum;
            a[(l + 1) * widest + j] = activate(net->activations[l], sum);
        }
    }
}

/* The loss of samples `rows` (count m) and its gradients, added into grads (zeroed by the caller). */
static double backprop(const Network *net, const Layer *layers, const Json *x, const Json *y, const int *rows,
                       int m, Layer *grads) {
    int depth = net->depth, widest = widest_layer(net);
    double *z = malloc(sizeof(double) * (size_t)((depth + 1) * widest));
    double *a = malloc(sizeof(double) * (size_t)((depth + 1) * widest));
    double *delta = malloc(sizeof(double) * (size_t)widest), *below = malloc(sizeof(double) * (size_t)widest);
    int n_out = net->sizes[depth];
    double n = !net->mean ? 1 : net->loss == CROSS_ENTROPY ? m : (double)m * n_out, total = 0;
    for (int s = 0; s < m; s++) {
        const Json *xs = x->items[rows[s]], *ys = y->items[rows[s]];
        forward_sample(net, layers, xs, z, a, widest);
        const double *zl = z + depth * widest, *al = a + depth * widest;
        if (net->loss == CROSS_ENTROPY) {
            int label = (int)ys->number;
            double shift = zl[0], sum = 0;
            for (int j = 1; j < n_out; j++) shift = fmax(shift, zl[j]);
            for (int j = 0; j < n_out; j++) sum += exp(zl[j] - shift);
            total += shift + log(sum) - zl[label];
            for (int j = 0; j < n_out; j++) delta[j] = (exp(zl[j] - shift) / sum - (j == label)) / n;
        } else {
            for (int j = 0; j < n_out; j++) {
                double target = ys->items[j]->number;
                if (net->loss == MSE) {
                    double error = al[j] - target;
                    total += error * error;
#ifdef BROKEN
                    delta[j] = error * slope(net->activations[depth - 1], zl[j]) / n; /* the factor 2 forgotten */
#else
                    delta[j] = 2 * error * slope(net->activations[depth - 1], zl[j]) / n;
#endif
                } else {
                    total += (1 - target) * softplus(zl[j]) + target * softplus(-zl[j]);
                    delta[j] = ((1 - target) * sigmoid(zl[j]) - target * sigmoid(-zl[j])) / n;
                }
            }
        }
        for (int l = depth - 1; l >= 0; l--) {
            int n_in = net->sizes[l], width = net->sizes[l + 1];
            for (int j = 0; j < width; j++) {
                for (int k = 0; k < n_in; k++) grads[l].w[j * n_in + k] += delta[j] * a[l * widest + k];
                if (grads[l].b) grads[l].b[j] += delta[j];
            }
            if (l == 0) break;
            for (int k = 0; k < n_in; k++) {
                double sum = 0;
                for (int j = 0; j < width; j++) sum += delta[j] * layers[l].w[j * n_in + k];
                below[k] = sum * slope(net->activations[l - 1], z[l * widest + k]);
            }
            memcpy(delta, below, sizeof(double) * (size_t)n_in);
        }
    }
    free(z); free(a); free(delta); free(below);
    return total / n;
}

static Layer *zeros_like(const Network *net, const Layer *layers) {
    Layer *zero = calloc((size_t)net->depth, sizeof(Layer));
    for (int l = 0; l < net->depth; l++) {
        zero[l].w = calloc((size_t)(net->sizes[l] * net->sizes[l + 1]), sizeof(double));
        if (layers[l].b) zero[l].b = calloc((size_t)net->sizes[l + 1], sizeof(double));
    }
    return zero;
}

static void step(const Network *net, Layer *layers, const Layer *grads, double rate) {
    for (int l = 0; l < net->depth; l++) {
        int n_in = net->sizes[l], width = net->sizes[l + 1];
        for (int i = 0; i < n_in * width; i++) layers[l].w[i] -= rate * grads[l].w[i];
        for (int j = 0; layers[l].b && j < width; j++) layers[l].b[j] -= rate * grads[l].b[j];
    }
}

static void free_layers(const Network *net, Layer *layers) {
    for (int l = 0; l < net->depth; l++) { free(layers[l].w); free(layers[l].b); }
    free(layers);
}

/* ---- writing the response --------------------------------------------------------------- */

static void write_layers(const Network *net, const Layer *layers) {
    printf("[");
    for (int l = 0; l < net->depth; l++) {
        int n_in = net->sizes[l], width = net->sizes[l + 1];
        printf("%s[[", l ? "," : "");
        for (int j = 0; j < width; j++) {
            printf("%s[", j ? "," : "");
            for (int k = 0; k < n_in; k++) printf("%s%.17g", k ? "," : "", layers[l].w[j * n_in + k]);
            printf("]");
        }
        printf("],");
        if (layers[l].b) {
            printf("[");
            for (int j = 0; j < width; j++) printf("%s%.17g", j ? "," : "", layers[l].b[j]);
            printf("]]");
        } else {
            printf("null]");
        }
    }
    printf("]");
}

static void write_output(const Network *net, const Layer *layers, const Json *x) {
    int widest = widest_layer(net), n_out = net->sizes[net->depth];
    double *z = malloc(sizeof(double) * (size_t)((net->depth + 1) * widest));
    double *a = malloc(sizeof(double) * (size_t)((net->depth + 1) * widest));
    printf("{\"output\": [");
    for (int s = 0; s < x->count; s++) {
        forward_sample(net, layers, x->items[s], z, a, widest);
        printf("%s[", s ? "," : "");
        for (int j = 0; j < n_out; j++) printf("%s%.17g", j ? "," : "", a[net->depth * widest + j]);
        printf("]");
    }
    printf("]}\n");
    free(z); free(a);
}

static int *all_rows(int m) {
    int *rows = malloc(sizeof(int) * (size_t)m);
    for (int s = 0; s < m; s++) rows[s] = s;
    return rows;
}

static void answer(const Json *request) {
    const char *method = get(request, "method")->string;
    if (strcmp(method, "describe") == 0) {
        printf("{\"name\": \"c-mlp%s\", \"dtype\": \"float64\", "
               "\"methods\": [\"forward\", \"loss_and_gradients\", \"sgd_step\", \"train\"]}\n",
#ifdef BROKEN
               "-broken"
#else
               ""
#endif
        );
        return;
    }
    Network net;
    const char *unsupported = read_network(get(request, "network"), &net);
    if (unsupported) {
        printf("{\"unsupported\": \"%s\"}\n", unsupported);
        free(net.sizes); free(net.activations);
        return;
    }
    if (strcmp(method, "forward") && strcmp(method, "loss_and_gradients") && strcmp(method, "sgd_step") &&
        strcmp(method, "train")) {
        printf("{\"error\": \"unknown method %s\"}\n", method);
        free(net.sizes); free(net.activations);
        return;
    }
    Layer *layers = read_params(get(request, "params"), &net);
    const Json *x = get(request, "x"), *y = get(request, "y");
    if (strcmp(method, "forward") == 0) {
        write_output(&net, layers, x);
    } else if (strcmp(method, "train") == 0) {
        const Json *batches = get(request, "batches");
        double rate = get(request, "learning_rate")->number;
        printf("{\"losses\": [");
        for (int t = 0; t < batches->count; t++) {
            const Json *batch = batches->items[t];
            int *rows = malloc(sizeof(int) * (size_t)batch->count);
            for (int s = 0; s < batch->count; s++) rows[s] = (int)batch->items[s]->number;
            Layer *grads = zeros_like(&net, layers);
            printf("%s%.17g", t ? "," : "", backprop(&net, layers, x, y, rows, batch->count, grads));
            step(&net, layers, grads, rate);
            free_layers(&net, grads);
            free(rows);
        }
        printf("], \"params\": ");
        write_layers(&net, layers);
        printf("}\n");
    } else {
        int *rows = all_rows(x->count);
        Layer *grads = zeros_like(&net, layers);
        double loss = backprop(&net, layers, x, y, rows, x->count, grads);
        if (strcmp(method, "loss_and_gradients") == 0) {
            printf("{\"loss\": %.17g, \"grads\": ", loss);
            write_layers(&net, grads);
        } else {
            step(&net, layers, grads, get(request, "learning_rate")->number);
            printf("{\"params\": ");
            write_layers(&net, layers);
        }
        printf("}\n");
        free_layers(&net, grads);
        free(rows);
    }
    free_layers(&net, layers);
    free(net.sizes); free(net.activations);
}

int main(void) {
    char *line = NULL;
    size_t capacity = 0;
    while (getline(&line, &capacity, stdin) > 0) {
        const char *cursor = line;
        Json *request = parse(&cursor);
        answer(request);
        fflush(stdout);
        release(request);
    }
    free(line);
    return 0;
}
