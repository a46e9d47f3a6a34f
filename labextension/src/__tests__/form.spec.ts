import {
  buildParameters,
  fieldHint,
  fieldOfMessage,
  initialText,
  LaunchForm,
  parseField,
  refArtifact
} from '../form';
import { ApiError, IExecutionRow, IFormField, ILaunchForm } from '../request';

function param(
  name: string,
  type: string | null,
  value: unknown,
  extra: Partial<IFormField> = {}
): IFormField {
  return {
    name,
    type,
    input: false,
    declared: JSON.stringify(value),
    source: 'notebook',
    plan_value: null,
    value,
    ...extra
  };
}

function input(name: string, value: string | null, extra: Partial<IFormField> = {}): IFormField {
  return {
    name,
    type: 'artifact',
    input: true,
    declared: "'nbripple://blessed_model?blessed=true'",
    source: 'notebook',
    plan_value: null,
    value,
    query: 'nbripple://blessed_model?blessed=true',
    optional: false,
    resolved: null,
    problem: null,
    artifact: 'blessed_model',
    choices: [
      {
        ref: 'blessed_model@3',
        version: 3,
        partitions: { blessed: 'true' },
        time_partition: null,
        created_at: null
      },
      {
        ref: 'blessed_model@2',
        version: 2,
        partitions: { blessed: 'false' },
        time_partition: null,
        created_at: null
      },
      {
        ref: 'blessed_model@1',
        version: 1,
        partitions: { blessed: 'true' },
        time_partition: null,
        created_at: null
      }
    ],
    ...extra
  };
}

const FORM: ILaunchForm = {
  plan: 'predict',
  version: 1,
  notebook: '/srv/ops.ipynb',
  kernel_name: 'python3',
  parameters: [
    param('batch', 'integer', 5),
    param('rate', 'number', 0.5),
    param('label', 'string', 'hello'),
    param('dry', 'boolean', false),
    param('sites', 'array', ['eu']),
    param('when', null, null, { declared: 'datetime.now()' })
  ],
  inputs: [input('model', 'blessed_model@3')]
};

describe('pre-filling', () => {
  it('shows the value the run would use now, as text', () => {
    expect(FORM.parameters.map(initialText)).toEqual(['5', '0.5', 'hello', 'false', '["eu"]', '']);
    expect(initialText(FORM.inputs[0])).toBe('blessed_model@3');
    expect(initialText(input('previous', null, { optional: true }))).toBe('');
  });

  it('says where a value comes from and which version an input picked', () => {
    expect(fieldHint(FORM.parameters[0])).toBe('the notebook’s default: 5');
    expect(fieldHint(param('scale', 'integer', 3, { source: 'plan' }))).toBe('set by the plan');
    expect(fieldHint(FORM.inputs[0])).toBe(
      'picked blessed_model@3: the newest of nbripple://blessed_model?blessed=true · the notebook’s default'
    );
    expect(fieldHint(input('model', null, { problem: 'input resolved to nothing' }))).toBe(
      'input resolved to nothing · the notebook’s default'
    );
    expect(
      fieldHint(
        input('model', 'blessed_model@3', { source: 'notebook', previous: 'blessed_model@2' })
      )
    ).toMatch(/the original ran with blessed_model@2$/);
    expect(fieldHint(param('scale', 'integer', 3, { source: 'execution', previous: 3 }))).toBe(
      'given to the original run'
    );
  });
});

describe('validation', () => {
  it('reads a value of each type and says what is wrong with one that is not', () => {
    const [batch, rate, label, dry, sites, when] = FORM.parameters;
    expect(parseField(batch, ' 12 ')).toEqual({ ok: true, value: 12 });
    expect(parseField(batch, '1.5')).toEqual({
      ok: false,
      error: 'batch takes an integer, e.g. 3'
    });
    expect(parseField(batch, '99999999999999999999').ok).toBe(false);
    expect(parseField(rate, '-1e-3')).toEqual({ ok: true, value: -0.001 });
    expect(parseField(rate, 'nan').ok).toBe(false);
    expect(parseField(rate, '')).toEqual({ ok: false, error: 'rate takes a number, e.g. 0.5' });
    expect(parseField(label, '  spaced ')).toEqual({ ok: true, value: '  spaced ' });
    expect(parseField(dry, 'True')).toEqual({ ok: true, value: true });
    expect(parseField(dry, 'yes').ok).toBe(false);
    expect(parseField(sites, '["eu", "us"]')).toEqual({ ok: true, value: ['eu', 'us'] });
    expect(parseField(sites, '{"a": 1}').ok).toBe(false);
    expect(parseField(param('opts', 'object', {}), '[1]').ok).toBe(false);
    expect(parseField(when, '3')).toEqual({ ok: true, value: 3 });
    expect(parseField(when, 'None')).toEqual({ ok: true, value: null });
    expect(parseField(when, '2024-01-01')).toEqual({ ok: true, value: '2024-01-01' });
  });

  it('takes a ref or query of the input’s artifact, and nothing only when optional', () => {
    const model = FORM.inputs[0];
    expect(parseField(model, ' blessed_model@1 ')).toEqual({ ok: true, value: 'blessed_model@1' });
    expect(parseField(model, 'nbripple://blessed_model?blessed=false').ok).toBe(true);
    expect(parseField(model, 'sales@1')).toEqual({
      ok: false,
      error: 'model takes a version of blessed_model, not of sales'
    });
    expect(parseField(model, 'not a ref').ok).toBe(false);
    expect(parseField(model, '').ok).toBe(false);
    expect(parseField(input('previous', null, { optional: true }), '')).toEqual({
      ok: true,
      value: null
    });
    expect(refArtifact('nbripple://m@3')).toBe('m');
    expect(refArtifact('m?blessed=true')).toBe('m');
  });
});

describe('the request body', () => {
  const texts = (changes: Record<string, string>) => {
    const all: Record<string, string> = {};
    for (const field of [...FORM.parameters, ...FORM.inputs]) {
      all[field.name] = initialText(field);
    }
    return { ...all, ...changes };
  };
  const fields = [...FORM.parameters, ...FORM.inputs];

  it('sends only what was changed, read as its type', () => {
    expect(buildParameters(fields, texts({}))).toEqual({ parameters: {}, errors: {} });
    expect(
      buildParameters(fields, texts({ batch: '7', dry: 'true', model: 'blessed_model@1' }))
    ).toEqual({
      parameters: { batch: 7, dry: true, model: 'blessed_model@1' },
      errors: {}
    });
  });

  it('sends nothing while a field is wrong, and names it', () => {
    const { errors } = buildParameters(fields, texts({ batch: 'seven', sites: '[' }));
    expect(Object.keys(errors)).toEqual(['batch', 'sites']);
  });

  it('refuses a required input that nothing matches, left empty', () => {
    const missing = input('model', null, { problem: 'resolved to nothing' });
    expect(buildParameters([missing], { model: '' }).errors.model).toMatch(/^nothing matches/);
    expect(buildParameters([missing], { model: 'blessed_model@1' }).parameters).toEqual({
      model: 'blessed_model@1'
    });
  });

  it('finds the field a server message is about', () => {
    expect(fieldOfMessage("ops.ipynb: parameter 'batch' takes an integer", ['batch'])).toBe(
      'batch'
    );
    expect(fieldOfMessage("input 'model' (x) resolved to nothing", ['model'])).toBe('model');
    expect(fieldOfMessage("has no parameter 'colour'", ['batch'])).toBeNull();
  });
});

describe('LaunchForm', () => {
  const queued: IExecutionRow = {
    id: 'e1',
    kind: 'notebook',
    status: 'queued',
    label: null,
    notebook: null,
    started_at: null,
    finished_at: null,
    duration_s: null,
    error: null,
    trigger: null,
    parent_id: null
  };

  async function open(submit: jest.Mock) {
    const done = jest.fn();
    const cancel = jest.fn();
    const form = new LaunchForm({
      title: 'Launch predict',
      submitLabel: 'Launch',
      load: async () => FORM,
      submit,
      done,
      cancel
    });
    document.body.appendChild(form.node);
    await form.load();
    const control = (name: string) =>
      form.node.querySelector(
        `[data-name="${name}"] input, [data-name="${name}"] select, [data-name="${name}"] textarea`
      ) as HTMLInputElement | HTMLSelectElement;
    const type = (name: string, value: string) => {
      const el = control(name);
      el.value = value;
      el.dispatchEvent(new Event('input', { bubbles: true }));
    };
    return { form, done, cancel, control, type };
  }

  afterEach(() => {
    document.body.innerHTML = '';
  });

  it('pre-fills every field, offers the versions and focuses the first field', async () => {
    const { form, control } = await open(jest.fn());
    expect(form.node.dataset.state).toBe('ready');
    expect(control('batch').value).toBe('5');
    expect((control('dry') as HTMLInputElement).checked).toBe(false);
    const model = control('model') as HTMLSelectElement;
    expect(model.value).toBe('blessed_model@3');
    expect(Array.from(model.options).map(o => o.value)).toEqual([
      'blessed_model@3',
      'blessed_model@2',
      'blessed_model@1',
      ' other'
    ]);
    expect(document.activeElement).toBe(control('batch'));
    expect(
      form.node.querySelector('[data-name="model"] .jp-nbripple-form-hint')?.textContent
    ).toMatch(/^picked blessed_model@3/);
  });

  it('submits the overrides and reports the run it started', async () => {
    const submit = jest.fn(async () => queued);
    const { form, done, type, control } = await open(submit);
    type('batch', '9');
    const model = control('model') as HTMLSelectElement;
    model.value = 'blessed_model@1';
    model.dispatchEvent(new Event('change', { bubbles: true }));
    expect(form.node.querySelector('[data-name="batch"]')?.getAttribute('data-changed')).toBe(
      'true'
    );
    await form.submit();
    expect(submit).toHaveBeenCalledWith({ batch: 9, model: 'blessed_model@1' });
    expect(done).toHaveBeenCalledWith(queued);
  });

  it('types any ref through "Other ref or query…"', async () => {
    const submit = jest.fn(async () => queued);
    const { form, control } = await open(submit);
    const model = control('model') as HTMLSelectElement;
    model.value = ' other';
    model.dispatchEvent(new Event('change', { bubbles: true }));
    const other = form.node.querySelector('.jp-nbripple-form-other') as HTMLInputElement;
    expect(other.hidden).toBe(false);
    expect(other.value).toBe('nbripple://blessed_model?blessed=true');
    other.value = 'blessed_model?blessed=false';
    await form.submit();
    expect(submit).toHaveBeenCalledWith({ model: 'blessed_model?blessed=false' });
  });

  it('does not submit while a field is wrong', async () => {
    const submit = jest.fn(async () => queued);
    const { form, type, control } = await open(submit);
    type('batch', 'many');
    await form.submit();
    expect(submit).not.toHaveBeenCalled();
    expect(
      form.node.querySelector('[data-name="batch"] .jp-nbripple-form-error')?.textContent
    ).toBe('batch takes an integer, e.g. 3');
    expect(control('batch').getAttribute('aria-invalid')).toBe('true');
    expect(document.activeElement).toBe(control('batch'));
  });

  it('keeps everything typed when the server refuses, and shows why', async () => {
    const submit = jest.fn(async () => {
      throw new ApiError(400, 'ParametersError', "ops.ipynb: parameter 'label' takes a string");
    });
    const { form, done, type, control } = await open(submit);
    type('batch', '11');
    type('label', 'x');
    await form.submit();
    expect(done).not.toHaveBeenCalled();
    expect(form.node.dataset.state).toBe('ready');
    expect(control('batch').value).toBe('11');
    expect(form.node.querySelector('.jp-nbripple-form-message')?.textContent).toBe(
      "ops.ipynb: parameter 'label' takes a string"
    );
    expect(
      form.node.querySelector('[data-name="label"] .jp-nbripple-form-error')?.textContent
    ).toMatch(/takes a string/);
    expect(form.node.querySelector('.jp-nbripple-form-submit')?.hasAttribute('disabled')).toBe(
      false
    );
  });

  it('closes on Escape and shows a load error with a Close button', async () => {
    const { form, cancel } = await open(jest.fn());
    form.node.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    expect(cancel).toHaveBeenCalledTimes(1);

    const closed = jest.fn();
    const broken = new LaunchForm({
      title: 'Launch gone',
      submitLabel: 'Launch',
      load: async () => {
        throw new ApiError(404, 'PlanNotFound', 'no plan named gone');
      },
      submit: jest.fn(),
      done: jest.fn(),
      cancel: closed
    });
    await broken.load();
    expect(broken.node.dataset.state).toBe('error');
    expect(broken.node.textContent).toContain('no plan named gone');
    (broken.node.querySelector('button') as HTMLButtonElement).click();
    expect(closed).toHaveBeenCalled();
  });

  it('says so when a notebook has no parameters', async () => {
    const submit = jest.fn(async () => queued);
    const form = new LaunchForm({
      title: 'Run plain.ipynb',
      submitLabel: 'Run',
      load: async () => ({
        notebook: '/r/plain.ipynb',
        path: 'plain.ipynb',
        kernel_name: 'python3',
        parameters: [],
        inputs: []
      }),
      submit,
      done: jest.fn(),
      cancel: jest.fn()
    });
    await form.load();
    expect(form.node.textContent).toContain('no parameters cell');
    await form.submit();
    expect(submit).toHaveBeenCalledWith({});
  });
});
